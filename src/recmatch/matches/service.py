"""The list of Recommended Matches: one page of a pipeline's list, read from its snapshot or ranked anew.

A request either reads a stored page (the day's snapshot exists: read it and what was done to its candidates) or
ranks a new list (``matches.rank``), shows its page at once and stores it (``matches.snapshots``) — after the
response when the caller can defer work, meanwhile serving it from the process's ``ListMemory``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel, Field

from recmatch.accounts.holdings import Holdings
from recmatch.accounts.service import Principal
from recmatch.actions.service import statuses
from recmatch.core.errors import InvalidInput, NotFound, RecmatchError, SearchUnavailable
from recmatch.core.es import IndexNames, map_es_errors
from recmatch.core.ids import pipeline_doc_id
from recmatch.matches.memory import ListMemory
from recmatch.matches.rank import LIST_SIZE, Guesses, Ranked, changed_since, compute_snapshot
from recmatch.pipelines.service import StoredPipeline, get_pipeline, touch_pipeline
from recmatch.snapshots.store import Snapshot, SnapshotEntry, load_snapshot, snapshot_id, snapshot_key, store_snapshot

log = logging.getLogger("recmatch.matches")

DISPLAY_FIELDS = [
    "candidate_id", "name", "headline", "title", "company", "location.name", "open_to_remote", "open_to_work",
    "allow_export", "profile_url", "years_experience", "seniority", "past_titles", "skills",
]
Defer = Callable[..., Any]


class MatchCandidate(BaseModel):
    """One recommended candidate, as the widget and the CRM show it."""

    rank: int = Field(description="1-based position in the list")
    candidate_id: str
    name: str
    headline: str | None = None
    title: str
    company: str | None = None
    location: str | None = None
    distance_km: float | None = Field(default=None, description="to the nearest pipeline location")
    nearest_location: str | None = Field(default=None, description="that location, as the pipeline names it")
    open_to_remote: bool = False
    open_to_work: bool = Field(default=False, description="the candidate says they are looking")
    years_experience: float | None = None
    seniority: str | None = Field(default=None, description="stated by the title, else from years of experience")
    past_titles: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list, description="all the candidate's skills (normalised)")
    allow_export: bool = False
    profile_url: str | None = None
    score: float
    reasons: list[str] = Field(description="why this candidate matches, in plain words")
    matched_skills: list[str]
    relaxed: list[str] = Field(
        default_factory=list,
        description="why this candidate is listed only because the list was relaxed: outside_radius (outside the "
                    "pipeline's radius), related_title, title_words (shares only some title words or a skill), "
                    "fewer_skills",
    )
    new: bool = Field(description="not in the previous day's list")
    status: str | None = Field(default=None, description="what was done to this candidate for this pipeline")


class MatchesPage(BaseModel):
    crm_pipeline_id: str
    pipeline_version: int
    snapshot: str = Field(description="pass it back as ?snapshot= to page without reshuffling")
    day: date
    page: int
    page_size: int
    pages: int
    total: int = Field(description=f"candidates in the list, at most {LIST_SIZE}")
    relaxation: list[str] = Field(description="relaxation steps taken because fewer than 125 qualified")
    unresolved_locations: list[str] = Field(description="pipeline locations recmatch could not place on a map")
    candidates: list[MatchCandidate]
    query: dict[str, Any] | None = Field(default=None, description="the exact search body (explain=true)")
    computed: bool = Field(description="this request ranked the list (false: it was read from the snapshot)")


def check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise InvalidInput("page: must be 1 or more")
    if not 1 <= page_size <= LIST_SIZE:
        raise InvalidInput(f"page_size: must be between 1 and {LIST_SIZE}")
    if (page - 1) * page_size >= LIST_SIZE:
        raise InvalidInput(f"page: the list holds at most {LIST_SIZE} candidates, so at most "
                           f"{-(-LIST_SIZE // page_size)} pages of {page_size}")


async def list_matches(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    principal: Principal,
    crm_pipeline_id: str,
    today: date,
    page: int = 1,
    page_size: int = 25,
    snapshot: str | None = None,
    explain: bool = False,
    defer: Defer | None = None,
    memory: ListMemory | None = None,
    refresh: bool = False,
) -> MatchesPage:
    """One page of a pipeline's list; the first read of a day (or of a new version) ranks and stores a snapshot.

    With REFRESH (the widget's "Refresh list"), the day's list is ranked again when candidates were indexed or the
    tenant's CRM synced what it holds since the list was made; the new list replaces the day's.

    With DEFER (e.g. a response's background tasks), a new snapshot is stored after the page is sent, so the
    caller does not wait for that write; meanwhile MEMORY (the process's, shared by its requests) serves it to a
    read that comes in between. Without DEFER it is stored before the page returns.
    """
    check_page(page, page_size)
    window = slice((page - 1) * page_size, page * page_size)
    if snapshot is not None:
        pipeline, found = await _paging(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id,
                                        key=snapshot, today=today, memory=memory)
        early = None
    else:
        pipeline, found, early = await _current(es=es, names=names, principal=principal,
                                                crm_pipeline_id=crm_pipeline_id, today=today, memory=memory)
    replace = False
    if refresh and snapshot is None and found is not None and await changed_since(
            es=es, names=names, tenant_id=principal.tenant.tenant_id, since=found.created_at):
        found, replace = None, True
    if found is not None:
        _, (total, candidates) = await asyncio.gather(
            touch_pipeline(es=es, names=names, pipeline=pipeline),
            _still_listed(es=es, names=names, snapshot=found, tenant_id=principal.tenant.tenant_id, window=window),
        )
        return _page(found, page, page_size, total, candidates, explain=explain, computed=False)
    ranked = await (early or compute_snapshot(es=es, names=names, pipeline=pipeline, day=today,
                                              held_guess=_held(memory)))
    found, total, candidates = await _keep_new_list(es=es, names=names, pipeline=pipeline, ranked=ranked,
                                                    window=window, defer=defer, memory=memory, replace=replace)
    return _page(found, page, page_size, total, candidates, explain=explain, computed=True)


async def _paging(*, es: AsyncElasticsearch, names: IndexNames, principal: Principal, crm_pipeline_id: str, key: str,
                  today: date, memory: ListMemory | None) -> tuple[StoredPipeline, Snapshot | None]:
    """Paging within snapshot KEY: the pipeline and the snapshot, read in one round trip."""
    pipeline, found = await asyncio.gather(
        get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id),
        load_snapshot(es=es, names=names, tenant_id=principal.tenant.tenant_id, crm_pipeline_id=crm_pipeline_id,
                      key=key),
    )
    pending = memory.being_stored(snapshot_id(pipeline, key)) if memory is not None else None
    found = found or (pending.snapshot() if pending is not None else None)
    if found is None and key != snapshot_key(pipeline, today):
        raise NotFound(f"snapshot {key!r} is no longer kept; ask without it for the current list")
    return pipeline, found


async def _current(
    *, es: AsyncElasticsearch, names: IndexNames, principal: Principal, crm_pipeline_id: str, today: date,
    memory: ListMemory | None,
) -> tuple[StoredPipeline, Snapshot | None, asyncio.Task[Ranked] | None]:
    """The pipeline and today's stored list of it (None: it must be ranked), with a ranking already started when
    this process could guess that it must."""
    recent = memory.recent if memory is not None else None
    doc_id = pipeline_doc_id(principal.tenant.tenant_id, crm_pipeline_id)
    guess = recent.get(doc_id) if recent is not None else None
    early: asyncio.Task[Ranked] | None = None
    if guess is not None and _ranks(guess.pipeline, today, memory):
        # This process wrote or read the pipeline lately, and no list of it is kept for today: most likely this
        # request ranks. Search now, while the pipeline is read; keep it only if the read shows the same revision
        # of the pipeline (another process may have changed it).
        early = asyncio.create_task(compute_snapshot(es=es, names=names, pipeline=guess.pipeline, day=today,
                                                     held_guess=_held(memory)))
    try:
        if early is not None:
            await asyncio.sleep(0)  # the search's first turn sends it (core.es.first_out), before the pipeline read
        pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id,
                                      recent=recent)
    except BaseException:
        _drop(early)
        raise
    key = snapshot_key(pipeline, today)
    # The pipeline names the newest list stored for it, so a new version or day skips a read that finds nothing.
    pending = memory.being_stored(snapshot_id(pipeline, key)) if memory is not None else None
    found = pending.snapshot() if pending is not None else None
    if found is None and pipeline.listed_snapshot == key:
        found = await load_snapshot(es=es, names=names, tenant_id=principal.tenant.tenant_id,
                                    crm_pipeline_id=crm_pipeline_id, key=key)
    seen = recent.get(doc_id) if recent is not None else None
    if early is not None and (found is not None or seen is None or guess is None or not guess.same_revision(seen)):
        _drop(early)
        early = None
    return pipeline, found, early


async def _keep_new_list(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, ranked: Ranked, window: slice,
    defer: Defer | None, memory: ListMemory | None, replace: bool = False,
) -> tuple[Snapshot, int, list[MatchCandidate]]:
    """Store a list just ranked (now, or after the response with DEFER); the page of it to show."""
    found = ranked.head
    total, candidates = found.total, _shown(ranked.entries(window), ranked.sources, {}, window.start + 1)
    if defer is None:
        kept = await store_snapshot(es=es, names=names, pipeline=pipeline, snapshot=ranked.snapshot(),
                                    recent=memory.recent if memory is not None else None, replace=replace)
        if kept is not ranked.snapshot():  # another request stored the day's list first: serve that one
            total, candidates = await _still_listed(es=es, names=names, snapshot=kept, tenant_id=pipeline.tenant_id,
                                                    window=window)
            return kept, total, candidates
        return found, total, candidates
    memory = ListMemory() if memory is None else memory
    memory.serving(snapshot_id(pipeline, found.snapshot), ranked)
    defer(_store_quietly, es=es, names=names, pipeline=pipeline, ranked=ranked, memory=memory, replace=replace)
    return found, total, candidates


def _page(found: Snapshot, page: int, page_size: int, total: int, candidates: list[MatchCandidate], *,
          explain: bool, computed: bool) -> MatchesPage:
    return MatchesPage(
        crm_pipeline_id=found.crm_pipeline_id,
        pipeline_version=found.pipeline_version,
        snapshot=found.snapshot,
        day=found.day,
        page=page,
        page_size=page_size,
        pages=-(-total // page_size),
        total=total,
        relaxation=found.relaxation,
        unresolved_locations=found.unresolved_locations,
        candidates=candidates,
        query=found.query if explain else None,
        computed=computed,
    )


async def _store_quietly(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, ranked: Ranked, memory: ListMemory,
    replace: bool = False,
) -> None:
    """store_snapshot after the page was sent: a failure is logged (the next read ranks the list again)."""
    try:
        await store_snapshot(es=es, names=names, pipeline=pipeline, snapshot=ranked.snapshot(), recent=memory.recent,
                             replace=replace)
    except RecmatchError as exc:
        log.warning("snapshot %s of pipeline %s not stored: %s", ranked.head.snapshot, pipeline.crm_pipeline_id,
                    exc.detail)
    finally:
        memory.stored(snapshot_id(pipeline, ranked.head.snapshot))


def _ranks(pipeline: StoredPipeline, day: date, memory: ListMemory | None) -> bool:
    """Whether a list of PIPELINE (as it is known) for DAY would be ranked now: none is stored or being stored."""
    key = snapshot_key(pipeline, day)
    return pipeline.listed_snapshot != key and (
        memory is None or memory.being_stored(snapshot_id(pipeline, key)) is None)


def _held(memory: ListMemory | None) -> Guesses[Holdings] | None:
    """What MEMORY last saw each tenant's CRM hold (compute_snapshot's guess; none without it)."""
    return None if memory is None else memory.held


def _drop(task: asyncio.Task[Any] | None) -> None:
    """Give up a speculative search (and never leave its outcome unretrieved)."""
    if task is not None:
        task.cancel()
        task.add_done_callback(lambda done: done.cancelled() or done.exception())


# A page reads the fields and statuses of its own candidates and of this many after them (in case some before or
# in it were erased since the list was made); of the list's other candidates only whether they still exist.
ERASED_MARGIN = 10


async def _still_listed(
    *, es: AsyncElasticsearch, names: IndexNames, snapshot: Snapshot, tenant_id: str, window: slice
) -> tuple[int, list[MatchCandidate]]:
    """The snapshot's candidates as they are now (erased ones are gone at once), with what was done to each:
    how many there are, and those in WINDOW."""
    listed = snapshot.candidate_ids
    if not listed:
        return 0, []
    near = listed[window.start:window.stop + ERASED_MARGIN]
    present, sources, done = await _read_listed(es=es, names=names, snapshot=snapshot, tenant_id=tenant_id,
                                                check=listed, read=near)
    entries = [entry for entry in snapshot.entries if entry.candidate_id in present]
    page = entries[window]
    unread = [entry.candidate_id for entry in page if entry.candidate_id not in sources]
    if unread:  # more were erased before the page than the margin covers: read the rest of it
        _, more, more_done = await _read_listed(es=es, names=names, snapshot=snapshot, tenant_id=tenant_id,
                                                check=unread, read=unread)
        sources, done = sources | more, done | more_done
        page = [entry for entry in page if entry.candidate_id in sources]  # erased meanwhile
    return len(entries), _shown(page, sources, done, window.start + 1)


async def _read_listed(
    *, es: AsyncElasticsearch, names: IndexNames, snapshot: Snapshot, tenant_id: str, check: list[str],
    read: list[str],
) -> tuple[set[str], dict[str, dict[str, Any]], dict[str, str]]:
    """Which of CHECK still exist; and for those of READ, their display fields and what was done to them. One mget
    for both: a document's fields cost Elasticsearch more than finding it (125 with fields ~5 ms, without ~2)."""
    fields = set(read)
    docs = [{"_id": candidate_id, "_source": DISPLAY_FIELDS if candidate_id in fields else False}
            for candidate_id in check]
    with map_es_errors("reading candidates"):
        found, done = await asyncio.gather(
            es.mget(index=names.candidates, docs=docs),
            statuses(es=es, names=names, tenant_id=tenant_id, crm_pipeline_id=snapshot.crm_pipeline_id,
                     candidate_ids=read),
        )
    if any("error" in doc for doc in found["docs"]):  # a page with holes would mislead
        raise SearchUnavailable("some candidates cannot be read right now (shards recovering)", retry_after=5)
    present = {doc["_id"] for doc in found["docs"] if doc.get("found")}
    sources = {doc["_id"]: doc["_source"] for doc in found["docs"] if doc.get("found") and doc["_id"] in fields}
    return present, sources, done


def _shown(entries: list[SnapshotEntry], sources: dict[str, dict[str, Any]], statuses: dict[str, str],
           first_rank: int) -> list[MatchCandidate]:
    """ENTRIES with their candidates' display fields and statuses, ranked from FIRST_RANK."""
    shown = []
    for rank, entry in enumerate(entries, start=first_rank):
        source = sources[entry.candidate_id]
        shown.append(
            MatchCandidate.model_construct(  # from our own index and snapshot, like the entries: nothing to validate
                rank=rank,
                candidate_id=entry.candidate_id,
                name=source["name"],
                headline=source.get("headline"),
                title=source["title"],
                company=source.get("company"),
                location=(source.get("location") or {}).get("name"),
                distance_km=entry.distance_km,
                nearest_location=entry.nearest_location,
                open_to_remote=source.get("open_to_remote", False),
                open_to_work=source.get("open_to_work", False),
                years_experience=source.get("years_experience"),
                seniority=source.get("seniority"),
                past_titles=source.get("past_titles") or [],
                skills=source.get("skills") or [],
                allow_export=source.get("allow_export", False),
                profile_url=source.get("profile_url"),
                score=entry.score,
                reasons=entry.reasons,
                matched_skills=entry.matched_skills,
                relaxed=entry.relaxed,
                new=entry.new,
                status=statuses.get(entry.candidate_id),
            )
        )
    return shown


__all__ = ["LIST_SIZE", "MatchCandidate", "MatchesPage", "SnapshotEntry", "check_page", "list_matches"]
