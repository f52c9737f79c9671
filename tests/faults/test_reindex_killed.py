"""`recmatch reindex` killed (SIGKILL) at seeded random points, from just started to just before the alias swap.

After each kill the alias still serves the previous index with its count; the next run takes over the dead run's
lock, deletes what it left behind and swaps.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from recmatch.core.config import Settings
from recmatch.core.es import IndexNames
from recmatch.indexing import reindex as indexing
from tests.faults.support import recmatch_env, write_candidates

pytestmark = pytest.mark.faults

SEED = 20261125
BIG = 30_000  # big enough that a run takes several seconds with small chunks, small enough to stay quick


@pytest.fixture
def own_settings(settings: Settings, es: Elasticsearch) -> Iterator[Settings]:
    prefix = f"{settings.index_prefix}-kill{uuid.uuid4().hex[:6]}"
    yield settings.model_copy(update={"index_prefix": prefix})
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")


def _start_reindex(settings: Settings, source: Path, workdir: Path) -> subprocess.Popen[bytes]:
    env = recmatch_env(settings, RECMATCH_REINDEX_CHUNK_DOCS="500", RECMATCH_REINDEX_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "recmatch", "reindex", "--source", str(source),
                             "--rejects", str(workdir / "rejects.jsonl")],
                            env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run_reindex(settings: Settings, source: Path, workdir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "recmatch", "reindex", "--source", str(source),
                           "--rejects", str(workdir / "rejects.jsonl")],
                          env=recmatch_env(settings), cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


class Watch:
    """What a running reindex has reached, read from the cluster without disturbing it (no refresh)."""

    def __init__(self, es: Elasticsearch, names: IndexNames) -> None:
        self.es, self.names = es, names
        self.before = {name for name, _ in indexing.candidate_indices(es, names)}

    def lock_held(self) -> bool:
        return bool(self.es.options(ignore_status=404).get(index=self.names.locks, id="reindex").get("found"))

    def building(self) -> str | None:
        indices = [name for name, _ in indexing.candidate_indices(self.es, self.names) if name not in self.before]
        return indices[-1] if indices else None

    def written(self) -> int:
        index = self.building()
        if index is None:
            return 0
        stats = self.es.options(ignore_status=404).indices.stats(index=index, metric="indexing")
        return int(stats.get("_all", {}).get("primaries", {}).get("indexing", {}).get("index_total", 0))

    def stage(self) -> str:
        index = self.building()
        if index is None:
            return "lock held, no new index yet" if self.lock_held() else "not started"
        written = self.written()
        status = dict(indexing.candidate_indices(self.es, self.names)).get(index, "gone")
        return (f"new index with {written} of {BIG} written" if written < BIG
                else f"all written, before the swap (index {status})")


def _points(rng: random.Random) -> list[tuple[str, Callable[[Watch, float], bool]]]:
    """Where to kill: seeded, from just started to just before the swap."""
    early = rng.uniform(0.05, 0.6)  # the process is still importing: nothing touched yet
    first, second = rng.uniform(0.05, 0.45), rng.uniform(0.55, 0.95)
    return [
        (f"{early:.2f} s after the start", lambda watch, age: age >= early),
        ("as soon as it holds the lock", lambda watch, age: watch.lock_held()),
        (f"at {first:.0%} written", lambda watch, age: watch.written() >= first * BIG),
        (f"at {second:.0%} written", lambda watch, age: watch.written() >= second * BIG),
        ("all written, before the swap", lambda watch, age: watch.written() >= BIG),
    ]


def test_reindex_killed_at_random_points_keeps_the_alias_and_the_next_run_cleans_up(
    es: Elasticsearch, own_settings: Settings, tmp_path: Path
) -> None:
    names = IndexNames(own_settings.index_prefix)
    big = write_candidates(tmp_path / "big.jsonl", BIG)
    _run_reindex(own_settings, write_candidates(tmp_path / "first.jsonl", 40), tmp_path)
    served, count = indexing.alias_target(es, names), 40
    report: list[dict[str, Any]] = []
    for number, (point, reached) in enumerate(_points(random.Random(SEED))):
        watch = Watch(es, names)
        started = time.monotonic()
        process = _start_reindex(own_settings, big, tmp_path)
        while not reached(watch, time.monotonic() - started):
            assert process.poll() is None, (f"the reindex ended ({process.returncode}) before {point}: "
                                            f"{process.stderr.read().decode(errors='replace')[-1500:]}")
            assert time.monotonic() - started < 60, f"{point} not reached in 60 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        stage, left_behind = watch.stage(), watch.building()
        report.append({"point": point, "killed_after_s": round(time.monotonic() - started, 2), "stage": stage})
        assert process.returncode == -signal.SIGKILL

        # The alias never moved: the previous index serves, whole.
        assert indexing.alias_target(es, names) == served, point
        assert es.count(index=names.candidates)["count"] == count, point
        assert es.search(index=names.candidates, query={"term": {"candidate_id": "c-000000"}})["hits"]["hits"]

        # The next run takes over the dead run's lock, deletes its index and swaps.
        count = 41 + number
        _run_reindex(own_settings, write_candidates(tmp_path / f"next-{number}.jsonl", count), tmp_path)
        now_served = indexing.alias_target(es, names)
        assert now_served != served
        assert es.count(index=names.candidates)["count"] == count
        statuses = dict(indexing.candidate_indices(es, names))
        assert set(statuses.values()) == {"complete"}, statuses
        assert left_behind is None or left_behind not in statuses, (point, left_behind, statuses)
        assert not watch.lock_held()
        served = now_served
    print(f"\nreindex kill points (seed {SEED}): {report}")
    stages = [entry["stage"] for entry in report]
    assert any("no new index" in stage or "not started" in stage for stage in stages[:2]), stages
    assert stages[-1].startswith("all written, before the swap"), stages
