"""Pipelines synced from the CRM: storage, fingerprint and version, what was understood of them, access.

The owner of the pipelines index: other rooms read and change pipelines through these functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import elasticsearch
import orjson
from cachetools import LRUCache
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan
from pydantic import BaseModel, ConfigDict, Field

from recmatch.accounts.service import Principal
from recmatch.core.errors import Conflict, NotFound, NotPermitted
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.core.ids import pipeline_doc_id
from recmatch.core.models import PipelineIn
from recmatch.ranking.understand import Understanding, understand
from recmatch.text.normalize import normalize_skill, normalize_title
from recmatch.text.taxonomy import Taxonomy


class StoredPipeline(PipelineIn):
    """A pipeline as recmatch keeps it (fields it does not know are ignored: a newer process may have added one)."""

    model_config = ConfigDict(extra="ignore")

    crm_pipeline_id: str
    tenant_id: str
    fingerprint: str
    version: int
    learning_version: int = 0
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None = None
    listed_snapshot: str | None = Field(default=None, description="key of the newest list stored for it")
    previous_snapshot: str | None = Field(default=None, description="key of the newest list of an earlier day")
    listed_relaxation: list[str] = Field(
        default_factory=list, description="relaxation steps of the newest stored list: where the next ranking of the "
                                          "pipeline starts searching (a guess, always checked)")
    understood: dict[str, Any]
    learned: dict[str, Any] | None = None
    acted_candidate_ids: list[str] = Field(default_factory=list)
    applied_actions: list[str] = Field(default_factory=list, description="actions already learned from")

    @property
    def understanding(self) -> Understanding:
        return Understanding.from_dict(self.understood)


class PipelineView(BaseModel):
    """A pipeline as the API shows it: the synced fields, fingerprint, version and what was understood."""

    crm_pipeline_id: str
    title: str
    locations: list[str]
    skills: list[str]
    remote_ok: bool
    radius_km: float
    access_restricted: bool
    owner_email: str | None
    fingerprint: str
    version: int
    updated_at: datetime
    occupations: list[dict[str, Any]]
    unresolved_locations: list[str]

    @classmethod
    def of(cls, pipeline: StoredPipeline) -> PipelineView:
        understanding = pipeline.understanding
        return cls(
            **pipeline.model_dump(include=set(cls.model_fields) - {"occupations", "unresolved_locations"}),
            occupations=[
                {"code": o.code, "title": o.title, "confidence": round(o.confidence, 3)}
                for o in understanding.occupations
            ],
            unresolved_locations=list(understanding.unresolved_locations),
        )


def fingerprint(pipeline: PipelineIn) -> str:
    """A hash of the fields that drive ranking: when it changes, the list changes."""
    ranking_fields = {
        "title": normalize_title(pipeline.title),
        "locations": sorted({location.casefold() for location in pipeline.locations}),
        "skills": sorted({normalize_skill(skill) for skill in pipeline.skills}),
        "remote_ok": pipeline.remote_ok,
        "radius_km": pipeline.radius_km,
    }
    return hashlib.sha256(orjson.dumps(ranking_fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _missing(crm_pipeline_id: str) -> NotFound:
    return NotFound(f"no pipeline {crm_pipeline_id!r}: sync it first with PUT /v1/pipelines/{crm_pipeline_id}")


def _owns(pipeline: StoredPipeline, principal: Principal) -> bool:
    return principal.is_admin or pipeline.owner_email == principal.seat.email


def check_visible(pipeline: StoredPipeline, principal: Principal) -> None:
    """A restricted pipeline is visible to its owner and to admins only; to anyone else it does not exist."""
    if pipeline.access_restricted and not _owns(pipeline, principal):
        raise _missing(pipeline.crm_pipeline_id)


def check_access_change(previous: StoredPipeline, pipeline: PipelineIn, principal: Principal) -> None:
    """Who owns a pipeline and whether it is restricted change only by its owner or an admin."""
    new_owner = pipeline.owner_email.lower() if pipeline.owner_email else previous.owner_email
    if (pipeline.access_restricted != previous.access_restricted or new_owner != previous.owner_email) \
            and not _owns(previous, principal):
        raise NotPermitted(f"only the owner of pipeline {previous.crm_pipeline_id!r} or an admin can change its "
                           "owner or its restriction")


@dataclass(frozen=True, slots=True)
class Seen:
    """A pipeline as this process last read or wrote it, and which revision of its document that was."""

    pipeline: StoredPipeline
    seq_no: int
    primary_term: int
    version: int

    @classmethod
    def of(cls, pipeline: StoredPipeline, written: Mapping[str, Any]) -> Seen:
        """From a get, index or update answer (they all carry _seq_no, _primary_term and _version)."""
        return cls(pipeline, written["_seq_no"], written["_primary_term"], written["_version"])

    def same_revision(self, other: Seen) -> bool:
        return (self.seq_no, self.primary_term) == (other.seq_no, other.primary_term)


class RecentPipelines:
    """The pipelines this process read or wrote lately (least recently used ones are forgotten).

    A guess, never an answer: a request may start work on what is here, and keeps that work only when its own
    realtime read shows the same revision (another process may have changed the pipeline meanwhile).
    """

    def __init__(self, size: int = 1024) -> None:
        self._seen: LRUCache[str, Seen] = LRUCache(maxsize=size)

    def get(self, doc_id: str) -> Seen | None:
        return self._seen.get(doc_id)

    def put(self, doc_id: str, seen: Seen) -> None:
        self._seen[doc_id] = seen

    def updated(self, doc_id: str, written: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        """After a partial update with CHANGES: the known pipeline with them applied, when the update was the
        very next write to it (otherwise what it holds now is unknown, and it is forgotten)."""
        seen = self._seen.get(doc_id)
        if seen is not None and written.get("_version") == seen.version + 1 \
                and written.get("_primary_term") == seen.primary_term:
            self._seen[doc_id] = Seen.of(seen.pipeline.model_copy(update=dict(changes)), written)
        else:
            self._seen.pop(doc_id, None)


async def _read(es: AsyncElasticsearch, names: IndexNames, doc_id: str) -> dict[str, Any] | None:
    with map_es_errors("reading a pipeline"):
        found = await ignoring(es, 404).get(index=names.pipelines, id=doc_id)
    return found if found.get("found") else None


async def get_pipeline(
    *, es: AsyncElasticsearch, names: IndexNames, principal: Principal, crm_pipeline_id: str,
    recent: RecentPipelines | None = None,
) -> StoredPipeline:
    """The caller's tenant's pipeline, when this seat may see it (and noted in RECENT)."""
    principal.check_scope(crm_pipeline_id)
    doc_id = pipeline_doc_id(principal.tenant.tenant_id, crm_pipeline_id)
    found = await _read(es, names, doc_id)
    if found is None:
        raise _missing(crm_pipeline_id)
    pipeline = StoredPipeline.model_validate(found["_source"])
    check_visible(pipeline, principal)
    if recent is not None:
        recent.put(doc_id, Seen.of(pipeline, found))
    return pipeline


async def read_pipeline(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, crm_pipeline_id: str
) -> StoredPipeline | None:
    """A tenant's pipeline by its id, for work done on the tenant's behalf (no seat: no visibility check)."""
    found = await _read(es, names, pipeline_doc_id(tenant_id, crm_pipeline_id))
    return StoredPipeline.model_validate(found["_source"]) if found is not None else None


async def put_pipeline(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    principal: Principal,
    crm_pipeline_id: str,
    pipeline: PipelineIn,
    taxonomy: Taxonomy,
    recent: RecentPipelines | None = None,
) -> tuple[StoredPipeline, bool]:
    """Store a synced pipeline; returns it and whether it was created. A ranking change bumps the version."""
    principal.check_scope(crm_pipeline_id)
    doc_id = pipeline_doc_id(principal.tenant.tenant_id, crm_pipeline_id)
    now = datetime.now(UTC)
    new_fingerprint = fingerprint(pipeline)
    for _ in range(3):  # optimistic concurrency: two syncs of one pipeline at once both land, in some order
        found = await _read(es, names, doc_id)
        previous = StoredPipeline.model_validate(found["_source"]) if found else None
        if previous is not None:
            check_visible(previous, principal)
            check_access_change(previous, pipeline, principal)
        unchanged = previous is not None and previous.fingerprint == new_fingerprint
        stored = StoredPipeline(
            **pipeline.model_dump(exclude={"owner_email"}),
            owner_email=(pipeline.owner_email or (previous.owner_email if previous else principal.seat.email)).lower(),
            crm_pipeline_id=crm_pipeline_id,
            tenant_id=principal.tenant.tenant_id,
            fingerprint=new_fingerprint,
            version=(previous.version + (0 if unchanged else 1)) if previous else 1,
            learning_version=previous.learning_version if previous else 0,
            created_at=previous.created_at if previous else now,
            updated_at=now,
            last_used_at=previous.last_used_at if previous else None,
            listed_snapshot=previous.listed_snapshot if previous else None,
            previous_snapshot=previous.previous_snapshot if previous else None,
            listed_relaxation=previous.listed_relaxation if previous else [],
            understood=understand(pipeline=pipeline, taxonomy=taxonomy).to_dict(),  # cheap; follows taxonomy updates
            learned=previous.learned if previous else None,
            acted_candidate_ids=previous.acted_candidate_ids if previous else [],
            applied_actions=previous.applied_actions if previous else [],
        )
        concurrency = {"if_seq_no": found["_seq_no"], "if_primary_term": found["_primary_term"]} if found else {
            "op_type": "create"}
        try:
            with map_es_errors("storing a pipeline"):
                # No refresh: every read of a pipeline is a realtime get (only the daily refresh searches them).
                written = await es.index(index=names.pipelines, id=doc_id,
                                         document=stored.model_dump(mode="json"), **concurrency)
            if recent is not None:
                recent.put(doc_id, Seen.of(stored, written))
            return stored, previous is None
        except elasticsearch.ConflictError:
            continue
    raise Conflict(f"pipeline {crm_pipeline_id!r} is being changed by another request; retry")


async def touch_pipeline(*, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline) -> None:
    """Record that the list was used today (at most one write a day), so the daily refresh covers it."""
    now = datetime.now(UTC)
    if pipeline.last_used_at is not None and pipeline.last_used_at.date() == now.date():
        return
    with map_es_errors("recording pipeline use"):
        await ignoring(es, 404, 409).update(
            index=names.pipelines,
            id=pipeline_doc_id(pipeline.tenant_id, pipeline.crm_pipeline_id),
            doc={"last_used_at": now.isoformat()},
        )


async def update_pipeline(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline,
    change: Callable[[StoredPipeline], dict[str, Any]],
) -> StoredPipeline:
    """Apply CHANGE (current pipeline → fields to set) with optimistic concurrency; returns the stored result."""
    doc_id = pipeline_doc_id(pipeline.tenant_id, pipeline.crm_pipeline_id)
    for _ in range(5):
        found = await _read(es, names, doc_id)
        if found is None:
            raise NotFound(f"pipeline {pipeline.crm_pipeline_id!r} was deleted meanwhile")
        current = StoredPipeline.model_validate(found["_source"])
        changes = change(current)
        if not changes:
            return current
        updated = current.model_copy(update=changes)
        document = updated.model_dump(mode="json")
        try:
            with map_es_errors("updating a pipeline"):
                await es.index(index=names.pipelines, id=doc_id, document=document,
                               if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"])
            return updated
        except elasticsearch.ConflictError:
            # The client sends a write again when its node failed mid-request: if what is stored is what we
            # wrote, the conflict is our own first try, and applying the change again would count it twice.
            stored = await _read(es, names, doc_id)
            if stored is not None and all(stored["_source"].get(key) == document.get(key) for key in changes):
                return updated
            continue  # changed by another request meanwhile: apply the change to the newer version
    raise Conflict(f"pipeline {pipeline.crm_pipeline_id!r} is being changed by many requests at once; retry")


async def record_listed(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, listed: str, previous: str | None,
    relaxation: list[str], used_at: datetime, recent: RecentPipelines | None = None,
) -> None:
    """Point the pipeline at its newest stored list (LISTED, relaxed by RELAXATION) and the newest of an earlier
    day (PREVIOUS)."""
    doc_id = pipeline_doc_id(pipeline.tenant_id, pipeline.crm_pipeline_id)
    changes = {"listed_snapshot": listed, "previous_snapshot": previous, "listed_relaxation": relaxation,
               "last_used_at": used_at}
    with map_es_errors("recording the list on its pipeline"):
        written = await ignoring(es, 404).update(  # 404: the pipeline was deleted meanwhile
            index=names.pipelines, id=doc_id, retry_on_conflict=5,
            doc={**changes, "last_used_at": used_at.isoformat()},
        )
    if recent is not None:
        recent.updated(doc_id, written, changes)


async def active_pipelines(
    *, es: AsyncElasticsearch, names: IndexNames, since: date
) -> AsyncIterator[StoredPipeline]:
    """Every pipeline (of every tenant) whose list was used on or after SINCE: the daily refresh's work."""
    with map_es_errors("listing active pipelines"):
        await es.indices.refresh(index=names.pipelines)  # pipelines are written without a refresh
        active = {"query": {"range": {"last_used_at": {"gte": since.isoformat()}}}}
        async for hit in async_scan(es, index=names.pipelines, query=active):
            yield StoredPipeline.model_validate(hit["_source"])
