"""Rank a pipeline's list now: the query, its relaxation steps, and the wording of each hit."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar, cast

from cachetools import LRUCache
from elasticsearch import AsyncElasticsearch

from recmatch.accounts.holdings import Holdings, holdings, synced_since
from recmatch.core.errors import SearchUnavailable
from recmatch.core.es import IndexNames, first_out, map_es_errors
from recmatch.pipelines.service import StoredPipeline
from recmatch.ranking.learning import LearningState, learned_boosts
from recmatch.ranking.query import (
    MAX_SIZE,
    LearnedBoosts,
    RelaxStep,
    applicable_steps,
    build_query,
    count_query,
)
from recmatch.ranking.reasons import Wording
from recmatch.snapshots.store import Snapshot, SnapshotEntry, previous_day_ids, snapshot_key

LIST_SIZE = 125


def pipeline_boosts(pipeline: StoredPipeline) -> LearnedBoosts | None:
    """What the ranking learned from this pipeline's actions (None before any)."""
    if not pipeline.learned:
        return None
    return learned_boosts(LearningState.from_dict(pipeline.learned), understanding=pipeline.understanding)


async def compute_snapshot(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, day: date,
    held_guess: Guesses[Holdings] | None = None,
) -> Ranked:
    """Rank now, relaxing until 125 qualify: the day's list (not stored yet: see store_snapshot).

    Candidates the tenant's CRM holds are left out, so ranking needs them first. With HELD_GUESS (what this process
    last read of them), the search starts at once with those and the holdings are read meanwhile: when the read
    shows the same, the search stands, else it runs again with what was read. Never a stale answer, one round
    trip less in the usual case.

    A pipeline whose newest stored list was relaxed (``listed_relaxation``, written by whichever process stored it)
    is searched at once at that relaxation while every level is counted; the search stands when the counts choose
    the same level. Otherwise the list is searched unrelaxed first, and counted only when too few qualify."""
    guess = held_guess.get(pipeline.tenant_id) if held_guess is not None else None
    expected = cast("tuple[RelaxStep, ...]", tuple(pipeline.listed_relaxation))

    async def search(leaving_out: Holdings) -> tuple[list[RelaxStep], dict[str, Any], Any]:
        return await _relaxed_search(es=es, names=names, ranking=_ranking(pipeline, leaving_out), expected=expected)

    with map_es_errors("ranking candidates"):
        if guess is None:
            held = await holdings(es=es, names=names, tenant_id=pipeline.tenant_id)
            (relax, body, response), previous = await asyncio.gather(
                search(held), previous_day_ids(es=es, names=names, pipeline=pipeline, day=day))
        else:
            (relax, body, response), held, previous = await first_out(  # the search first: it takes longest
                search(guess), holdings(es=es, names=names, tenant_id=pipeline.tenant_id),
                previous_day_ids(es=es, names=names, pipeline=pipeline, day=day))
            if not held.same_keys(guess):
                relax, body, response = await search(held)
    if held_guess is not None:
        held_guess.seen(pipeline.tenant_id, held)
    understanding = pipeline.understanding
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


def _ranking(pipeline: StoredPipeline, held: Holdings) -> dict[str, Any]:
    """build_query's arguments for PIPELINE, leaving out what it acted on and what the CRM holds: by member id in the
    query; by profile URL (not indexed) after it, so the search asks for as many more as there are held URLs
    (bounded by HELD_AT_MOST)."""
    return {"understanding": pipeline.understanding, "boosts": pipeline_boosts(pipeline),
            "exclude_ids": [*pipeline.acted_candidate_ids, *held.member_ids],
            "size": min(LIST_SIZE + len(held.profile_urls), MAX_SIZE)}


V = TypeVar("V")


class Guesses(Generic[V]):  # noqa: UP046 - Python 3.11 has no type parameter syntax
    """What this process last saw of something per key (at most SIZE keys, the latest kept): a guess to start
    ranking with, always checked against what is read or counted."""

    def __init__(self, size: int = 1024) -> None:
        self._seen: LRUCache[str, V] = LRUCache(maxsize=size)

    def get(self, key: str) -> V | None:
        return self._seen.get(key)

    def seen(self, key: str, value: V) -> None:
        self._seen[key] = value


async def _relaxed_search(
    *, es: AsyncElasticsearch, names: IndexNames, ranking: dict[str, Any], expected: tuple[RelaxStep, ...],
) -> tuple[list[RelaxStep], dict[str, Any], Any]:
    """The relaxation RANKING needs, its body, and the search with it. EXPECTED (a guess) is searched while every
    level is counted, when it is still one of the pipeline's levels and relaxes something."""
    steps = applicable_steps(ranking["understanding"])
    if expected and steps[:len(expected)] == expected:
        guessed = build_query(**ranking, relax=expected)
        response, relax = await first_out(es.search(index=names.candidates, body=guessed),
                                          _relaxation(es=es, names=names, ranking=ranking, steps=steps, first=0))
        if relax == list(expected):
            return relax, guessed, response
    else:
        body = build_query(**ranking)
        response = await es.search(index=names.candidates, body=body)
        if response["hits"]["total"]["value"] >= LIST_SIZE or not steps:
            return [], body, response
        # Too few qualify: count every relaxation level in one cheap round trip, rank only the one chosen.
        relax = await _relaxation(es=es, names=names, ranking=ranking, steps=steps, first=1)
    body = build_query(**ranking, relax=relax)
    return relax, body, await es.search(index=names.candidates, body=body)


async def _relaxation(
    *, es: AsyncElasticsearch, names: IndexNames, ranking: dict[str, Any], steps: tuple[RelaxStep, ...], first: int
) -> list[RelaxStep]:
    """The fewest relaxation steps (in order, at least FIRST) with which LIST_SIZE candidates qualify, or all of them
    when none do. Every level is counted in one msearch of count probes (no scoring, stopped at the list size)."""
    levels = [list(steps[:count]) for count in range(first, len(steps) + 1)]
    searches = [part for level in levels for part in ({"index": names.candidates}, count_query(**ranking, relax=level))]
    with map_es_errors("counting who qualifies"):
        responses = (await es.msearch(searches=searches))["responses"]
    for level, response in zip(levels, responses, strict=True):
        if "error" in response:
            at = level[-1] if level else "none"
            raise SearchUnavailable(f"counting who qualifies failed at relaxation {at}: {response['error']}",
                                    retry_after=5)
        if response["hits"]["total"]["value"] >= LIST_SIZE:
            return level
    return levels[-1]


async def changed_since(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, since: datetime) -> bool:
    """Whether candidates were indexed (a live upsert or a reindex), or the tenant's CRM synced candidates it
    holds, after SINCE: then a list made at SINCE is missing something."""
    with map_es_errors("looking for candidates indexed since the list was made"):
        indexed, synced = await asyncio.gather(
            es.count(index=names.candidates, query={"range": {"indexed_at": {"gt": since.isoformat()}}}),
            synced_since(es=es, names=names, tenant_id=tenant_id, since=since),
        )
    return indexed["count"] > 0 or synced


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
            relaxed=list(explanation.relaxed),
            new=self._previous is not None and hit["_id"] not in self._previous,
        )
