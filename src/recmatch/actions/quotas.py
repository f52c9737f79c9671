"""Monthly allowances per seat (exports, InMails): counted in the usage index, safe across processes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import elasticsearch
from elasticsearch import AsyncElasticsearch

from recmatch.accounts.service import Principal
from recmatch.core.errors import Conflict, LimitReached
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.core.ids import usage_id


def month_reset(today: date) -> date:
    """The first day of the next calendar month, when monthly limits reset."""
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


async def count_usage(*, es: AsyncElasticsearch, names: IndexNames, principal: Principal, kind: str, counted: str,
                      limit: int, today: date) -> int:
    """Count one more KIND (COUNTED in words) for the seat this month, or raise LimitReached."""
    month = f"{today:%Y-%m}"
    record_id = usage_id(principal.tenant.tenant_id, principal.seat.seat_id, month, kind)
    for _ in range(5):
        with map_es_errors("counting usage"):
            found = await ignoring(es, 404).get(index=names.usage, id=record_id)
        used = found["_source"]["count"] if found.get("found") else 0
        if used >= limit:
            raise LimitReached(f"this seat has used its {limit} {counted} for {month}; the allowance resets on "
                               f"{month_reset(today).isoformat()}", retry_after=int(
                                   (datetime.combine(month_reset(today), datetime.min.time(), UTC)
                                    - datetime.now(UTC)).total_seconds()))
        document = {"tenant_id": principal.tenant.tenant_id, "seat_id": principal.seat.seat_id, "kind": kind,
                    "month": month, "count": used + 1, "updated_at": datetime.now(UTC).isoformat()}
        concurrency = ({"if_seq_no": found["_seq_no"], "if_primary_term": found["_primary_term"]}
                       if found.get("found") else {"op_type": "create"})
        try:
            with map_es_errors("counting usage"):
                await es.index(index=names.usage, id=record_id, document=document, **concurrency)
            return used + 1
        except elasticsearch.ConflictError:
            continue  # another process counted at the same moment: read again
    raise Conflict(f"too many {counted} at the same moment for this seat; retry")
