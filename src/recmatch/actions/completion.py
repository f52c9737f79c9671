"""The sweeper: actions recorded whose follow-up steps did not all apply (a failed write, a process stopped
part-way) are completed here once they have been pending for RECMATCH_ACTION_SWEEP_AFTER_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta

from elasticsearch import AsyncElasticsearch

from recmatch.accounts.service import Tenant, get_tenant
from recmatch.accounts.tokens import server_secret
from recmatch.actions.service import complete_pending
from recmatch.core.config import Settings
from recmatch.core.errors import NotFound, RecmatchError
from recmatch.core.es import IndexNames, map_es_errors

log = logging.getLogger("recmatch.actions")


async def sweep(*, es: AsyncElasticsearch, names: IndexNames, settings: Settings, secret: str,
                older_than: float | None = None, limit: int = 200) -> int:
    """Complete up to LIMIT actions pending for longer than OLDER_THAN seconds; returns how many were completed."""
    wait = settings.action_sweep_after_seconds if older_than is None else older_than
    before = (datetime.now(UTC) - timedelta(seconds=wait)).isoformat()
    index = names.index("actions")
    with map_es_errors("looking for half-applied actions"):
        await es.indices.refresh(index=index)
        found = await es.search(index=index, size=limit, query={"range": {"pending_since": {"lte": before}}},
                                sort=[{"pending_since": "asc"}])
    tenants: dict[str, Tenant | None] = {}
    completed = 0
    for hit in found["hits"]["hits"]:
        tenant_id = hit["_source"]["tenant_id"]
        if tenant_id not in tenants:
            try:
                tenants[tenant_id] = await get_tenant(es=es, names=names, tenant_id=tenant_id)
            except NotFound:
                tenants[tenant_id] = None
        tenant = tenants[tenant_id]
        for pending in list((hit["_source"].get("pending") or {}).values()):
            if pending is None or tenant is None:
                continue
            try:
                await complete_pending(es=es, names=names, settings=settings, secret=secret, tenant=tenant,
                                       state_id=hit["_id"], pending=pending)
                completed += 1
            except RecmatchError as exc:
                log.warning("action %s on %s still half-applied: %s", pending["action"], hit["_id"], exc.detail)
    if completed:
        log.info("completed %d half-applied actions", completed)
    return completed


@asynccontextmanager
async def background_sweeper(*, es: AsyncElasticsearch, names: IndexNames, settings: Settings) -> AsyncIterator[None]:
    """Sweep every half sweep time for the duration of the block (the API's lifespan)."""
    stop = asyncio.Event()
    pause = max(settings.action_sweep_after_seconds / 2, 1.0)

    async def loop() -> None:
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
            if stop.is_set():
                return
            try:
                secret = await server_secret(es=es, names=names, settings=settings)
                await sweep(es=es, names=names, settings=settings, secret=secret)
            except Exception:  # noqa: BLE001 - the sweeper outlives any one failed round
                log.warning("sweeping half-applied actions failed; trying again in %.0f s", pause, exc_info=True)

    task = asyncio.create_task(loop(), name="recmatch-action-sweeper")
    try:
        yield
    finally:
        stop.set()
        with suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=10)
