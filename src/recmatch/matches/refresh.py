"""The daily refresh: today's list of every pipeline in use, computed ahead of the recruiter."""

from __future__ import annotations

from datetime import date, timedelta

from elasticsearch import AsyncElasticsearch

from recmatch.core.es import IndexNames
from recmatch.matches.rank import changed_since, compute_snapshot
from recmatch.pipelines.service import active_pipelines
from recmatch.snapshots.store import load_snapshot, snapshot_key, store_snapshot


async def refresh_active(
    *, es: AsyncElasticsearch, names: IndexNames, today: date, active_days: int = 30
) -> tuple[int, int]:
    """Compute today's snapshot of every pipeline used in the last ACTIVE_DAYS; returns (computed, already there)."""
    computed = kept = 0
    async for pipeline in active_pipelines(es=es, names=names, since=today - timedelta(days=active_days)):
        stored = await load_snapshot(es=es, names=names, tenant_id=pipeline.tenant_id,
                                     crm_pipeline_id=pipeline.crm_pipeline_id, key=snapshot_key(pipeline, today))
        if stored is not None and not await changed_since(es=es, names=names, tenant_id=pipeline.tenant_id,
                                                          since=stored.created_at):
            kept += 1
            continue
        ranked = await compute_snapshot(es=es, names=names, pipeline=pipeline, day=today)
        await store_snapshot(es=es, names=names, pipeline=pipeline, snapshot=ranked.snapshot(),
                             replace=stored is not None)  # candidates arrived since: today's list takes them in
        computed += 1
    return computed, kept
