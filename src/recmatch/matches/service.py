"""The list of Recommended Matches: run the query, relax it, explain hits, keep daily snapshots for stable paging."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import elasticsearch
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan
from pydantic import BaseModel, Field

from recmatch.accounts.holdings import holdings
from recmatch.accounts.service import Principal
from recmatch.core.errors import InvalidInput, NotFound, RecmatchError, SearchUnavailable
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.pipelines.service import RecentPipelines, StoredPipeline, get_pipeline, pipeline_doc_id, touch_pipeline
from recmatch.ranking.learning import FeedbackCounts, home_regions, learned_boosts
from recmatch.ranking.query import MAX_SIZE, LearnedBoosts, applicable_steps, build_query
from recmatch.ranking.reasons import Wording

log = logging.getLogger("recmatch.matches")

LIST_SIZE = 125
UNSTORED_AT_MOST = timedelta(minutes=1)  # a list served from memory while it is stored: never longer than this
DISPLAY_FIELDS = [
    "candidate_id", "name", "headline", "title", "company", "location.name", "open_to_remote", "open_to_work",
    "allow_export", "profile_url", "years_experience", "seniority", "past_titles", "skills",
]


class SnapshotEntry(BaseModel):
    candidate_id: str
    score: float
    reasons: list[str]
    matched_skills: list[str]
    distance_km: float | None
    nearest_location: str | None = None
    new: bool


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


def snapshot_key(pipeline: StoredPipeline, day: date) -> str:
    """Pipeline version + day + learning version: the same key means the same list."""
    return f"v{pipeline.version}-{day:%Y%m%d}-l{pipeline.learning_version}"


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
    defer: Callable[..., Any] | None = None,
    unstored: dict[str, Ranked] | None = None,
    recent: RecentPipelines | None = None,
    refresh: bool = False,
) -> MatchesPage:
    """One page of a pipeline's list; the first read of a day (or of a new version) computes a snapshot.

    With REFRESH (the widget's "Refresh list"), the day's list is ranked again when candidates were indexed or
    the tenant's CRM synced what it holds since the list was made; the new list replaces the day's.

    With DEFER (e.g. a response's background tasks), a new snapshot is stored after the page is sent, so the
    caller does not wait for that write; meanwhile it is in UNSTORED (by snapshot id, shared by the process's
    requests), where a read that comes in between finds it. Without DEFER it is stored before the page returns.
    RECENT (the pipelines the process saw lately) lets a list that must be ranked start searching early.
    """
    check_page(page, page_size)
    tenant_id = principal.tenant.tenant_id
    window = slice((page - 1) * page_size, page * page_size)
    early: asyncio.Task[Ranked] | None = None
    if snapshot is not None:  # paging: read the pipeline and the snapshot in one round trip
        pipeline, found = await asyncio.gather(
            get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id),
            load_snapshot(es=es, names=names, tenant_id=tenant_id, crm_pipeline_id=crm_pipeline_id, key=snapshot),
        )
        pending = _unstored(unstored, _snapshot_id(pipeline, snapshot))
        found = found or (pending.snapshot() if pending is not None else None)
        if found is None and snapshot != snapshot_key(pipeline, today):
            raise NotFound(f"snapshot {snapshot!r} is no longer kept; ask without it for the current list")
    else:
        doc_id = pipeline_doc_id(tenant_id, crm_pipeline_id)
        guess = recent.get(doc_id) if recent is not None else None
        if guess is not None and _ranks(guess.pipeline, today, unstored):
            # This process wrote or read the pipeline lately, and no list of it is kept for today: most likely
            # this request ranks. Search now, while the pipeline is read; keep it only if the read shows the same
            # revision of the pipeline (another process may have changed it).
            early = asyncio.create_task(compute_snapshot(es=es, names=names, pipeline=guess.pipeline, day=today))
        try:
            pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id,
                                          recent=recent)
        except BaseException:
            _drop(early)
            raise
        key = snapshot_key(pipeline, today)
        # The pipeline names the newest list stored for it, so a new version or day skips a read that finds nothing.
        pending = _unstored(unstored, _snapshot_id(pipeline, key))
        found = pending.snapshot() if pending is not None else None
        if found is None and pipeline.listed_snapshot == key:
            found = await load_snapshot(es=es, names=names, tenant_id=tenant_id, crm_pipeline_id=crm_pipeline_id,
                                        key=key)
        seen = recent.get(doc_id) if recent is not None else None
        if early is not None and (found is not None or seen is None or not guess.same_revision(seen)):
            _drop(early)
            early = None
    replace = False
    if refresh and snapshot is None and found is not None and await changed_since(
            es=es, names=names, tenant_id=tenant_id, since=found.created_at):
        found, replace = None, True
    computed = found is None
    if found is None:
        ranked = await (early or compute_snapshot(es=es, names=names, pipeline=pipeline, day=today))
        found = ranked.head
        total, candidates = found.total, _shown(ranked.entries(window), ranked.sources, {}, window.start + 1)
        if defer is None:
            kept = await store_snapshot(es=es, names=names, pipeline=pipeline, snapshot=ranked.snapshot(),
                                        recent=recent, replace=replace)
            if kept is not ranked.snapshot():  # another request stored the day's list first: serve that one
                found = kept
                total, candidates = await _still_listed(es=es, names=names, snapshot=kept, tenant_id=tenant_id,
                                                        window=window)
        else:
            unstored = {} if unstored is None else unstored
            unstored[_snapshot_id(pipeline, found.snapshot)] = ranked
            defer(_store_quietly, es=es, names=names, pipeline=pipeline, ranked=ranked, unstored=unstored,
                  recent=recent, replace=replace)
    else:
        _, (total, candidates) = await asyncio.gather(
            touch_pipeline(es=es, names=names, pipeline=pipeline),
            _still_listed(es=es, names=names, snapshot=found, tenant_id=tenant_id, window=window),
        )
    return MatchesPage(
        crm_pipeline_id=crm_pipeline_id,
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


def pipeline_boosts(pipeline: StoredPipeline) -> LearnedBoosts | None:
    """What the ranking learned from this pipeline's actions (None before any)."""
    if not pipeline.learned:
        return None
    return learned_boosts(FeedbackCounts.from_dict(pipeline.learned),
                          home_regions=home_regions(pipeline.understanding))


async def load_snapshot(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, crm_pipeline_id: str, key: str
) -> Snapshot | None:
    with map_es_errors("reading a snapshot"):
        found = await ignoring(es, 404).get(
            index=names.index("snapshots"), id=f"{pipeline_doc_id(tenant_id, crm_pipeline_id)}:{key}"
        )
    return Snapshot.model_validate(found["_source"]) if found.get("found") else None


async def compute_snapshot(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, day: date
) -> Ranked:
    """Rank now, relaxing until 125 qualify: the day's list (not stored yet: see store_snapshot)."""
    understanding = pipeline.understanding
    held = await holdings(es=es, names=names, tenant_id=pipeline.tenant_id)
    # Candidates the tenant's CRM holds are left out: by member id in the query; by profile URL (not indexed) after
    # it, so the search asks for as many more as there are held URLs (bounded by HELD_AT_MOST).
    ranking = {"understanding": understanding, "boosts": pipeline_boosts(pipeline),
               "exclude_ids": [*pipeline.acted_candidate_ids, *held.member_ids],
               "size": min(LIST_SIZE + len(held.profile_urls), MAX_SIZE)}
    body = build_query(**ranking)
    relax: list[str] = []
    with map_es_errors("ranking candidates"):
        response, previous = await asyncio.gather(
            es.search(index=names.candidates, body=body),
            _previous_day_ids(es=es, names=names, pipeline=pipeline, day=day),
        )
        steps = applicable_steps(understanding)
        if response["hits"]["total"]["value"] < LIST_SIZE and steps:
            # Too few qualify: try every relaxation level in one round trip, keep the first that fills the list.
            levels = [steps[: i + 1] for i in range(len(steps))]
            bodies = [build_query(**ranking, relax=level) for level in levels]
            searches = [part for level_body in bodies for part in ({"index": names.candidates}, level_body)]
            responses = (await es.msearch(searches=searches))["responses"]
            for level, level_body, level_response in zip(levels, bodies, responses, strict=True):
                if "error" in level_response:
                    raise SearchUnavailable(f"ranking failed at relaxation {level[-1]}: {level_response['error']}",
                                            retry_after=5)
                relax, body, response = list(level), level_body, level_response
                if level_response["hits"]["total"]["value"] >= LIST_SIZE:
                    break
    hits = response["hits"]["hits"]
    if held.profile_urls:
        hits = [hit for hit in hits if not held.holds(hit["_id"], hit["_source"].get("profile_url"))]
    hits = hits[:LIST_SIZE]
    head = Snapshot(
        tenant_id=pipeline.tenant_id,
        crm_pipeline_id=pipeline.crm_pipeline_id,
        snapshot=snapshot_key(pipeline, day),
        pipeline_version=pipeline.version,
        learning_version=pipeline.learning_version,
        day=day,
        created_at=datetime.now(UTC),
        total=len(hits),
        relaxation=relax,
        candidate_ids=[hit["_id"] for hit in hits],
        entries=[],
        unresolved_locations=list(understanding.unresolved_locations),
        query=body,
    )
    return Ranked(head, hits, Wording(understanding), previous)


class Ranked:
    """A list just ranked, worded as far as it has been read: the page a request shows is worded at once, the
    rest when the whole list is first needed (to store it, after the page was sent, or by a request meanwhile)."""

    def __init__(self, head: Snapshot, hits: list[dict[str, Any]], wording: Wording, previous: set[str] | None):
        self.head = head  # the snapshot without its entries
        self.sources = {hit["_id"]: hit["_source"] for hit in hits}
        self._hits = hits
        self._wording = wording
        self._previous = previous
        self._entries: list[SnapshotEntry | None] = [None] * len(hits)
        self._snapshot: Snapshot | None = None

    def entries(self, window: slice) -> list[SnapshotEntry]:
        for index in range(*window.indices(len(self._hits))):
            if self._entries[index] is None:
                self._entries[index] = self._entry(self._hits[index])
        return cast("list[SnapshotEntry]", self._entries[window])

    def snapshot(self) -> Snapshot:
        """The whole list, worded."""
        if self._snapshot is None:
            self._snapshot = self.head.model_copy(update={"entries": self.entries(slice(None))})
        return self._snapshot

    def _entry(self, hit: dict[str, Any]) -> SnapshotEntry:
        explanation = self._wording.describe(hit)
        return SnapshotEntry.model_construct(  # built from our own hits: nothing to validate
            candidate_id=hit["_id"],
            score=round(hit["_score"] or 0.0, 4),
            reasons=list(explanation.reasons),
            matched_skills=list(explanation.matched_skills),
            distance_km=explanation.distance_km,
            nearest_location=explanation.nearest_location,
            new=self._previous is not None and hit["_id"] not in self._previous,
        )


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
            await es.index(index=names.index("snapshots"), id=_snapshot_id(pipeline, snapshot.snapshot),
                           document=snapshot.model_dump(mode="json"), op_type="index" if replace else "create")
    except elasticsearch.ConflictError:
        kept = await load_snapshot(es=es, names=names, tenant_id=pipeline.tenant_id,
                                   crm_pipeline_id=pipeline.crm_pipeline_id, key=snapshot.snapshot) or snapshot
    doc_id = pipeline_doc_id(pipeline.tenant_id, pipeline.crm_pipeline_id)
    changes = {"listed_snapshot": kept.snapshot, "previous_snapshot": previous_list_key(pipeline, kept.day),
               "last_used_at": datetime.now(UTC)}
    with map_es_errors("recording the list on its pipeline"):
        written = await ignoring(es, 404).update(  # 404: the pipeline was deleted meanwhile
            index=names.index("pipelines"), id=doc_id, retry_on_conflict=5,
            doc={**changes, "last_used_at": changes["last_used_at"].isoformat()},
        )
    if recent is not None:
        recent.updated(doc_id, written, changes)
    return kept


async def _store_quietly(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, ranked: Ranked,
    unstored: dict[str, Ranked], recent: RecentPipelines | None, replace: bool = False,
) -> None:
    """store_snapshot after the page was sent: a failure is logged (the next read ranks the list again)."""
    try:
        await store_snapshot(es=es, names=names, pipeline=pipeline, snapshot=ranked.snapshot(), recent=recent,
                             replace=replace)
    except RecmatchError as exc:
        log.warning("snapshot %s of pipeline %s not stored: %s", ranked.head.snapshot, pipeline.crm_pipeline_id,
                    exc.detail)
    finally:
        unstored.pop(_snapshot_id(pipeline, ranked.head.snapshot), None)


def _ranks(pipeline: StoredPipeline, day: date, unstored: dict[str, Ranked] | None) -> bool:
    """Whether a list of PIPELINE (as it is known) for DAY would be ranked now: none is stored or being stored."""
    key = snapshot_key(pipeline, day)
    return pipeline.listed_snapshot != key and _unstored(unstored, _snapshot_id(pipeline, key)) is None


def _unstored(unstored: dict[str, Ranked] | None, snapshot_id: str) -> Ranked | None:
    """A list this process served and is storing; one whose storing never started or ended (a response that
    failed after the list was ranked runs no background task) is forgotten after UNSTORED_AT_MOST."""
    if unstored is None or (ranked := unstored.get(snapshot_id)) is None:
        return None
    if datetime.now(UTC) - ranked.head.created_at > UNSTORED_AT_MOST:
        del unstored[snapshot_id]
        return None
    return ranked


def _drop(task: asyncio.Task[Any] | None) -> None:
    """Give up a speculative search (and never leave its outcome unretrieved)."""
    if task is not None:
        task.cancel()
        task.add_done_callback(lambda done: done.cancelled() or done.exception())


def _snapshot_id(pipeline: StoredPipeline, key: str) -> str:
    return f"{pipeline_doc_id(pipeline.tenant_id, pipeline.crm_pipeline_id)}:{key}"


async def _previous_day_ids(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, day: date
) -> set[str] | None:
    """Candidate ids of the newest list stored before DAY (the pipeline names it); None when there was none."""
    key = previous_list_key(pipeline, day)
    if key is None:
        return None
    with map_es_errors("reading yesterday's list"):
        found = await ignoring(es, 404).get(index=names.index("snapshots"), id=_snapshot_id(pipeline, key),
                                            source=["candidate_ids"])
    return set(found["_source"]["candidate_ids"]) if found.get("found") else None


def previous_list_key(pipeline: StoredPipeline, day: date) -> str | None:
    """The key of the newest list stored for PIPELINE before DAY, from the two the pipeline names."""
    for key in (pipeline.listed_snapshot, pipeline.previous_snapshot):
        if key is not None and snapshot_day(key) < day:
            return key
    return None


def snapshot_day(key: str) -> date:
    """The day in a snapshot key (see snapshot_key)."""
    return datetime.strptime(key.split("-")[1], "%Y%m%d").date()


async def _still_listed(
    *, es: AsyncElasticsearch, names: IndexNames, snapshot: Snapshot, tenant_id: str, window: slice
) -> tuple[int, list[MatchCandidate]]:
    """The snapshot's candidates as they are now (erased ones are gone at once), with what was done to each:
    how many there are, and those in WINDOW."""
    if not snapshot.candidate_ids:
        return 0, []
    state_ids = [f"{tenant_id}:{snapshot.crm_pipeline_id}:{cid}" for cid in snapshot.candidate_ids]
    with map_es_errors("reading candidates"):
        docs, states = await asyncio.gather(
            es.mget(index=names.candidates, ids=snapshot.candidate_ids, source=DISPLAY_FIELDS),
            es.mget(index=names.index("actions"), ids=state_ids, source=["candidate_id", "status"]),
        )
    if any("error" in doc for doc in (*docs["docs"], *states["docs"])):  # a page with holes would mislead
        raise SearchUnavailable("some candidates cannot be read right now (shards recovering)", retry_after=5)
    statuses = {doc["_source"]["candidate_id"]: doc["_source"]["status"] for doc in states["docs"] if doc.get("found")}
    sources = {doc["_id"]: doc["_source"] for doc in docs["docs"] if doc.get("found")}
    return _listed(snapshot, sources, statuses, window)


def _listed(
    snapshot: Snapshot, sources: dict[str, dict[str, Any]], statuses: dict[str, str], window: slice
) -> tuple[int, list[MatchCandidate]]:
    """How many of the snapshot's entries still have a candidate document, and those in WINDOW of them."""
    present = [entry for entry in snapshot.entries if entry.candidate_id in sources]
    return len(present), _shown(present[window], sources, statuses, window.start + 1)


def _shown(entries: list[SnapshotEntry], sources: dict[str, dict[str, Any]], statuses: dict[str, str],
           first_rank: int) -> list[MatchCandidate]:
    """ENTRIES with their candidates' display fields and statuses, ranked from FIRST_RANK."""
    shown = []
    for rank, entry in enumerate(entries, start=first_rank):
        source = sources[entry.candidate_id]
        shown.append(
            MatchCandidate(
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
                new=entry.new,
                status=statuses.get(entry.candidate_id),
            )
        )
    return shown


async def changed_since(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, since: datetime) -> bool:
    """Whether candidates were indexed (a live upsert or a reindex), or the tenant's CRM synced candidates it
    holds, after SINCE: then a list made at SINCE is missing something."""
    stamp = since.isoformat()
    held = {"bool": {"filter": [{"term": {"tenant_id": tenant_id}}, {"range": {"synced_at": {"gt": stamp}}}]}}
    with map_es_errors("looking for candidates indexed since the list was made"):
        indexed, synced = await asyncio.gather(
            es.count(index=names.candidates, query={"range": {"indexed_at": {"gt": stamp}}}),
            es.count(index=names.index("crm_holdings"), query=held),
        )
    return indexed["count"] > 0 or synced["count"] > 0


async def refresh_active(
    *, es: AsyncElasticsearch, names: IndexNames, today: date, active_days: int = 30
) -> tuple[int, int]:
    """Compute today's snapshot of every pipeline used in the last ACTIVE_DAYS; returns (computed, already there)."""
    computed = kept = 0
    since = (today - timedelta(days=active_days)).isoformat()
    with map_es_errors("listing active pipelines"):
        await es.indices.refresh(index=names.index("pipelines"))  # pipelines are written without a refresh
        active = {"query": {"range": {"last_used_at": {"gte": since}}}}
        pages = async_scan(es, index=names.index("pipelines"), query=active)
        async for hit in pages:
            pipeline = StoredPipeline.model_validate(hit["_source"])
            stored = await load_snapshot(es=es, names=names, tenant_id=pipeline.tenant_id,
                                         crm_pipeline_id=pipeline.crm_pipeline_id, key=snapshot_key(pipeline, today))
            if stored is not None and not await changed_since(es=es, names=names, tenant_id=pipeline.tenant_id,
                                                              since=stored.created_at):
                kept += 1
                continue
            ranked = await compute_snapshot(es=es, names=names, pipeline=pipeline, day=today)
            await store_snapshot(es=es, names=names, pipeline=pipeline, snapshot=ranked.snapshot(),
                                 replace=stored is not None)
            computed += 1
    return computed, kept
