"""Rank a pipeline's list now: the query, its relaxation steps, and the wording of each hit."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any, cast

from elasticsearch import AsyncElasticsearch

from recmatch.core.errors import SearchUnavailable
from recmatch.core.es import IndexNames, map_es_errors
from recmatch.matches.snapshots import Snapshot, SnapshotEntry, previous_day_ids, snapshot_key
from recmatch.pipelines.service import StoredPipeline
from recmatch.ranking.learning import FeedbackCounts, home_regions, learned_boosts
from recmatch.ranking.query import LearnedBoosts, applicable_steps, build_query
from recmatch.ranking.reasons import Wording

LIST_SIZE = 125


def pipeline_boosts(pipeline: StoredPipeline) -> LearnedBoosts | None:
    """What the ranking learned from this pipeline's actions (None before any)."""
    if not pipeline.learned:
        return None
    return learned_boosts(FeedbackCounts.from_dict(pipeline.learned),
                          home_regions=home_regions(pipeline.understanding))


async def compute_snapshot(
    *, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline, day: date
) -> Ranked:
    """Rank now, relaxing until 125 qualify: the day's list (not stored yet: see store_snapshot)."""
    understanding = pipeline.understanding
    ranking = {"understanding": understanding, "boosts": pipeline_boosts(pipeline),
               "exclude_ids": pipeline.acted_candidate_ids, "size": LIST_SIZE}
    body = build_query(**ranking)
    relax: list[str] = []
    with map_es_errors("ranking candidates"):
        response, previous = await asyncio.gather(
            es.search(index=names.candidates, body=body),
            previous_day_ids(es=es, names=names, pipeline=pipeline, day=day),
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
            relaxed=list(explanation.relaxed),
            new=self._previous is not None and hit["_id"] not in self._previous,
        )
