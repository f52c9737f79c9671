"""The Idempotency-Key store: the same key and request get the stored answer; another request with it, 409."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import elasticsearch
import orjson
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel

from recmatch.accounts.service import Principal
from recmatch.core.errors import Conflict
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.core.ids import idempotency_id


def request_hash(*parts: Any) -> str:
    """A fingerprint of a request, to tell a replay from another request under the same key."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def idempotent(
    *, es: AsyncElasticsearch, names: IndexNames, principal: Principal, key: str | None, fingerprint: str,
    run: Callable[[], Awaitable[BaseModel]], check: Callable[[], Awaitable[Any]],
) -> dict[str, Any]:
    """Run once per Idempotency-Key: the same key and request get the stored answer; another request, 409.

    CHECK (the caller's scope and visibility checks) runs before a stored answer is replayed, so a key never
    answers for a pipeline the caller may not act on now."""
    if key is None:
        return (await run()).model_dump(mode="json")
    record_id = idempotency_id(principal.tenant.tenant_id, principal.seat.seat_id, key)
    with map_es_errors("reading the idempotency key"):
        found = await ignoring(es, 404).get(index=names.idempotency, id=record_id)
    if found.get("found"):
        await check()
        return _replay(found["_source"], fingerprint, key)
    response = (await run()).model_dump(mode="json")
    record = {"tenant_id": principal.tenant.tenant_id, "seat_id": principal.seat.seat_id,
              "request_hash": fingerprint, "status_code": 200, "response": response,
              "created_at": datetime.now(UTC).isoformat()}
    try:
        with map_es_errors("storing the idempotency key"):
            await es.index(index=names.idempotency, id=record_id, document=record, op_type="create")
    except elasticsearch.ConflictError:
        stored = await es.get(index=names.idempotency, id=record_id)
        await check()
        return _replay(stored["_source"], fingerprint, key)
    return response


def _replay(record: dict[str, Any], fingerprint: str, key: str) -> dict[str, Any]:
    if record["request_hash"] != fingerprint:
        raise Conflict(f"Idempotency-Key {key!r} was already used for a different request")
    return record["response"]
