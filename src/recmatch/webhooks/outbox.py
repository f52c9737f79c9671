"""The outbox: deliveries waiting for, being sent to, or done with a tenant's webhooks (owner of the outbox index).

Entries are added here (idempotently, by delivery id), claimed and sent by ``webhooks.worker``, and listed or
retried by a tenant's admin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import elasticsearch
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel

from recmatch.core.errors import Conflict, InvalidInput, NotFound
from recmatch.core.es import IndexNames, delete_matching, ignoring, map_es_errors

Target = Literal["crm", "messaging"]
DeliveryStatus = Literal["pending", "delivering", "delivered", "dead"]

MAX_DELIVERY_ID = 512  # Elasticsearch's limit on a document id, in bytes


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def unclaimed() -> dict[str, Any]:
    return {"claimed_by": None, "claimed_until": None}


async def enqueue(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    tenant_id: str,
    target: Target,
    event: str,
    payload: dict[str, Any],
    delivery_id: str,
    crm_pipeline_id: str | None = None,
    candidate_id: str | None = None,
) -> bool:
    """Add a pending delivery; False when this delivery_id is already in the outbox (enqueue is idempotent)."""
    if not delivery_id or len(delivery_id.encode()) > MAX_DELIVERY_ID:
        raise InvalidInput(f"delivery_id must be 1 to {MAX_DELIVERY_ID} bytes")
    now = iso(utc_now())
    document = {
        "delivery_id": delivery_id, "tenant_id": tenant_id, "target": target, "event": event,
        "crm_pipeline_id": crm_pipeline_id, "candidate_id": candidate_id, "payload": payload,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
    }
    with map_es_errors("adding a delivery to the outbox"):
        try:
            await es.create(index=names.outbox, id=delivery_id, document=document)
        except elasticsearch.ConflictError:
            return False
    return True


class Delivery(BaseModel):
    """An outbox entry as an admin sees it."""

    delivery_id: str
    target: Target
    event: str
    status: DeliveryStatus
    attempts: int
    crm_pipeline_id: str | None = None
    candidate_id: str | None = None
    created_at: datetime
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    dead_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None


class DeliveryList(BaseModel):
    total: int
    deliveries: list[Delivery]


async def list_deliveries(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, status: DeliveryStatus | None = None,
    limit: int = 50,
) -> DeliveryList:
    """The tenant's deliveries, newest first, optionally of one status."""
    filters: list[dict[str, Any]] = [{"term": {"tenant_id": tenant_id}}]
    if status is not None:
        filters.append({"term": {"status": status}})
    with map_es_errors("listing deliveries"):
        found = await es.search(index=names.outbox, query={"bool": {"filter": filters}}, size=limit,
                                sort=[{"created_at": "desc"}, {"delivery_id": "asc"}], source_excludes=["payload"],
                                track_total_hits=True)
    return DeliveryList(total=found["hits"]["total"]["value"],
                        deliveries=[Delivery.model_validate(hit["_source"]) for hit in found["hits"]["hits"]])


async def retry_delivery(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, delivery_id: str) -> Delivery:
    """Put a dead delivery back in the queue now, with its tries reset."""
    index = names.outbox
    with map_es_errors("reading a delivery"):
        found = await ignoring(es, 404).get(index=index, id=delivery_id)
    # Another tenant's entry answers exactly like a missing one.
    if not found.get("found") or found["_source"]["tenant_id"] != tenant_id:
        raise NotFound(f"no delivery {delivery_id!r}")
    if found["_source"]["status"] != "dead":
        raise Conflict(f"delivery {delivery_id!r} is {found['_source']['status']}; only dead deliveries can be retried")
    changes = {"status": "pending", "attempts": 0, "next_attempt_at": iso(utc_now()), "dead_at": None, **unclaimed()}
    with map_es_errors("retrying a delivery"):
        try:
            # wait_for: the admin's next list already shows it pending.
            await es.update(index=index, id=delivery_id, doc=changes, if_seq_no=found["_seq_no"],
                            if_primary_term=found["_primary_term"], refresh="wait_for")
        except elasticsearch.ConflictError:
            raise Conflict(f"delivery {delivery_id!r} changed meanwhile; list it again") from None
    return Delivery.model_validate({**found["_source"], **changes})


async def count_by_status(*, es: AsyncElasticsearch, names: IndexNames, request_timeout: float) -> dict[str, int]:
    """How many entries the outbox holds in each status (one aggregation, no retries: for metrics)."""
    found = await es.options(request_timeout=request_timeout, max_retries=0).search(
        index=names.outbox, size=0, track_total_hits=False,
        aggs={"by_status": {"terms": {"field": "status", "size": 20}}})
    return {bucket["key"]: bucket["doc_count"] for bucket in found["aggregations"]["by_status"]["buckets"]}


async def purge_finished(*, es: AsyncElasticsearch, names: IndexNames, before: datetime) -> int:
    """Retention: delete delivered and dead entries (InMail bodies, shared contact details) created before BEFORE;
    pending ones stay until they finish."""
    return await delete_matching(es, index=names.outbox, query={"bool": {"filter": [
        {"terms": {"status": ["delivered", "dead"]}}, {"range": {"created_at": {"lt": before.isoformat()}}}]}})
