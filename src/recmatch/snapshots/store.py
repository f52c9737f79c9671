"""Snapshots: the ranked list of one pipeline version on one day (owner of the snapshots index).

A snapshot is stored once (the first stored wins, so pages agree) and its pipeline points at it; paging reads it
back, and tomorrow's list compares with it to mark who is new.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import elasticsearch
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel

from recmatch.core import ids
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.pipelines.service import RecentPipelines, StoredPipeline, record_listed


class SnapshotEntry(BaseModel):
    candidate_id: str
    score: float
    reasons: list[str]
    matched_skills: list[str]
    distance_km: float | None
    nearest_location: str | None = None
    new: bool
    relaxed: list[str] = []


class Snapshot(BaseModel):
    """The ranked list of one pipeline version, on one day, with one learning version."""

    tenant_id: str
    crm_pipeline_id: str
    snapshot: str
    pipeline_version: int
    learning_version: int
    day: date
    created_at: datetime
    total: int
    relaxation: list[str]
    candidate_ids: list[str]
    entries: list[SnapshotEntry]
    unresolved_locations: list[str]
    query: dict[str, Any]


def snapshot_key(pipeline: StoredPipeline, day: date) -> str:
    """Pipeline version + day + learning version: the same key means the same list."""
    return ids.snapshot_key(version=pipeline.version, day=day, learning_version=pipeline.learning_version)


def snapshot_id(pipeline: StoredPipeline, key: str) -> str:
    return ids.snapshot_doc_id(pipeline.tenant_id, pipeline.crm_pipeline_id, key)


async def listed_candidate_ids(*, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline) -> list[str]:
    """The candidates of the pipeline's newest stored list, in rank order (none before a list is stored)."""
    if not pipeline.listed_snapshot:
        return []
    with map_es_errors("reading a snapshot"):
        found = await ignoring(es, 404).get(index=names.snapshots, id=snapshot_id(pipeline, pipeline.listed_snapshot),
                                            source_includes=["candidate_ids"])
    return list(found["_source"].get("candidate_ids") or ()) if found.get("found") else []


async def load_snapshot(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, crm_pipeline_id: str, key: str
) -> Snapshot | None:
    with map_es_errors("reading a snapshot"):
        found = await ignoring(es, 404).get(index=names.snapshots, id=ids.snapshot_doc_id(tenant_id, crm_pipeline_id,
                                                                                         key))
    return Snapshot.model_validate(found["_source"]) if found.get("found") else None


async def store_snapshot(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, snapshot: Snapshot,
    recent: RecentPipelines | None = None, replace: bool = False,
) -> Snapshot:
    """Keep the day's list and point its pipeline at it; returns the list kept, which is an earlier one when
    another request stored the same snapshot first (the first stored wins, so pages agree) unless REPLACE (a
    refresh that found new candidates) says the new list takes its place."""
    kept = snapshot
    try:
        with map_es_errors("storing a snapshot"):
            await es.index(index=names.snapshots, id=snapshot_id(pipeline, snapshot.snapshot),
                           document=snapshot.model_dump(mode="json"), op_type="index" if replace else "create")
    except elasticsearch.ConflictError:
        kept = await load_snapshot(es=es, names=names, tenant_id=pipeline.tenant_id,
                                   crm_pipeline_id=pipeline.crm_pipeline_id, key=snapshot.snapshot) or snapshot
    await record_listed(es=es, names=names, pipeline=pipeline, listed=kept.snapshot,
                        previous=previous_list_key(pipeline, kept.day), relaxation=kept.relaxation,
                        used_at=datetime.now(UTC), recent=recent)
    return kept


async def previous_day_ids(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, day: date
) -> set[str] | None:
    """Candidate ids of the newest list stored before DAY (the pipeline names it); None when there was none."""
    key = previous_list_key(pipeline, day)
    if key is None:
        return None
    with map_es_errors("reading yesterday's list"):
        found = await ignoring(es, 404).get(index=names.snapshots, id=snapshot_id(pipeline, key),
                                            source=["candidate_ids"])
    return set(found["_source"]["candidate_ids"]) if found.get("found") else None


def previous_list_key(pipeline: StoredPipeline, day: date) -> str | None:
    """The key of the newest list stored for PIPELINE before DAY, from the two the pipeline names."""
    for key in (pipeline.listed_snapshot, pipeline.previous_snapshot):
        if key is not None and ids.snapshot_key_day(key) < day:
            return key
    return None


__all__ = ["Snapshot", "SnapshotEntry", "listed_candidate_ids", "load_snapshot", "previous_day_ids",
           "previous_list_key", "snapshot_id", "snapshot_key", "store_snapshot"]
