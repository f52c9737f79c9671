"""Reindex against a real Elasticsearch node: alias swap, rejects, failure safety, rollback, live changes."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from recmatch.core.config import Settings
from recmatch.core.errors import ReindexFailed
from recmatch.core.es import IndexNames
from recmatch.core.models import CandidateIn
from recmatch.indexing import reindex as indexing

TITLES = ["Senior Software Engineer", "Registered Nurse", "Data Scientist", "Accountant", "Web Developer"]


def candidate(number: int, **changes: object) -> dict:
    record = {
        "candidate_id": f"c-{number:06d}",
        "name": f"Person {number}",
        "title": TITLES[number % len(TITLES)],
        "company": "Acme",
        "location": {"name": "Austin, TX, US", "lat": 30.2672, "lon": -97.7431, "country": "US"},
        "skills": ["Python", "SQL"],
        "years_experience": number % 15,
        "open_to_work": True,
        "allow_export": number % 10 != 0,
    }
    record.update(changes)
    return record


def write_source(path: Path, count: int, *, bad_every: int = 0, start: int = 0, **changes: object) -> Path:
    lines = []
    for number in range(start, start + count):
        if bad_every and number % bad_every == bad_every - 1:
            lines.append(b'{"candidate_id": "broken", "name": "No Title"}')
        else:
            lines.append(orjson.dumps(candidate(number, **changes)))
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture
def own_settings(settings: Settings, es: Elasticsearch) -> Iterator[Settings]:
    """A prefix per test, so alias state never leaks between tests."""
    prefix = f"{settings.index_prefix}-{uuid.uuid4().hex[:6]}"
    yield settings.model_copy(update={"index_prefix": prefix})
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")


def run(es: Elasticsearch, settings: Settings, source: Path, tmp_path: Path, **kwargs) -> indexing.ReindexReport:
    return indexing.reindex(es=es, settings=settings, source=source, rejects_path=tmp_path / "rejects.jsonl", **kwargs)


def test_reindex_loads_candidates_and_swaps_alias(es, own_settings, tmp_path):
    report = run(es, own_settings, write_source(tmp_path / "c.jsonl", 300), tmp_path)
    names = IndexNames(own_settings.index_prefix)
    assert indexing.alias_target(es, names) == report.index
    assert report.count == report.created == 300
    assert es.count(index=names.candidates)["count"] == 300
    document = es.get(index=names.candidates, id="c-000000")["_source"]
    assert document["title_norm"] == "senior software engineer"
    assert document["location"]["geo"] == {"lat": 30.2672, "lon": -97.7431}
    assert document["skills"] == ["python", "sql"]
    settings = es.indices.get_settings(index=report.index)[report.index]["settings"]["index"]
    assert "refresh_interval" not in settings  # restored to the default after the bulk load
    assert settings["number_of_replicas"] == str(own_settings.candidates_replicas)


def test_reindex_reads_gzip(es, own_settings, tmp_path):
    report = run(es, own_settings, write_source(tmp_path / "c.jsonl.gz", 120), tmp_path)
    assert report.count == 120


def test_rejected_lines_are_written_with_line_numbers(es, own_settings, tmp_path):
    source = write_source(tmp_path / "c.jsonl", 400, bad_every=200)
    report = run(es, own_settings, source, tmp_path)  # 2 of 400 = 0.5% < 1%
    assert report.rejected == 2 and report.count == 398
    rejects = [orjson.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejects] == [200, 400]
    assert "title" in rejects[0]["reason"] and "required" in rejects[0]["reason"].lower()


def test_repeated_candidate_id_keeps_the_later_line(es, own_settings, tmp_path):
    source = write_source(tmp_path / "c.jsonl", 30)
    with source.open("ab") as lines:
        lines.write(orjson.dumps(candidate(7, title="Chief Nursing Officer")) + b"\n")
    report = run(es, own_settings, source, tmp_path)
    assert (report.lines, report.created, report.duplicates, report.count) == (31, 30, 1, 30)
    names = IndexNames(own_settings.index_prefix)
    assert es.get(index=names.candidates, id="c-000007")["_source"]["title"] == "Chief Nursing Officer"


def test_too_many_rejects_keep_the_alias_and_remove_the_new_index(es, own_settings, tmp_path):
    names = IndexNames(own_settings.index_prefix)
    first = run(es, own_settings, write_source(tmp_path / "good.jsonl", 50), tmp_path)
    with pytest.raises(ReindexFailed, match="rejected"):
        run(es, own_settings, write_source(tmp_path / "bad.jsonl", 100, bad_every=10), tmp_path)
    assert indexing.alias_target(es, names) == first.index
    assert [name for name, _ in indexing.candidate_indices(es, names)] == [first.index]
    assert es.count(index=names.candidates)["count"] == 50


def test_rollback_returns_to_the_previous_index_and_retention_deletes_older(es, own_settings, tmp_path):
    settings = own_settings.model_copy(update={"reindex_keep": 1})
    names = IndexNames(settings.index_prefix)
    reports = [run(es, settings, write_source(tmp_path / f"c{i}.jsonl", 10 * (i + 1)), tmp_path) for i in range(3)]
    assert reports[2].deleted == [reports[0].index]
    assert reports[2].previous == reports[1].index
    before, after = indexing.rollback(es=es, settings=settings)
    assert (before, after) == (reports[2].index, reports[1].index)
    assert es.count(index=names.candidates)["count"] == 20


def test_erased_candidate_is_not_brought_back_by_a_reindex(es, own_settings, tmp_path):
    names = IndexNames(own_settings.index_prefix)
    run(es, own_settings, write_source(tmp_path / "c.jsonl", 30), tmp_path)
    assert indexing.erase_candidate(es=es, settings=own_settings, candidate_id="c-000007") is True
    assert not es.exists(index=names.candidates, id="c-000007")
    report = run(es, own_settings, write_source(tmp_path / "old.jsonl", 30), tmp_path)
    assert report.erased == 1 and report.count == 29
    assert not es.exists(index=names.candidates, id="c-000007")


def test_live_upsert_and_erase_during_a_reindex_survive_the_swap(es, own_settings, tmp_path):
    names = IndexNames(own_settings.index_prefix)
    settings = own_settings.model_copy(update={"reindex_chunk_docs": 100})
    run(es, settings, write_source(tmp_path / "c.jsonl", 50), tmp_path)
    changed: list[bool] = []

    def change_while_loading(done: int, docs: int) -> None:
        if not changed:  # after the first chunk went out, before the swap
            changed.append(True)
            live = CandidateIn.model_validate(candidate(1500, title="Chief Nursing Officer"))
            indexing.upsert_candidate(es=es, settings=settings, candidate=live)
            indexing.erase_candidate(es=es, settings=settings, candidate_id="c-001700")

    report = run(es, settings, write_source(tmp_path / "big.jsonl", 2000), tmp_path, on_progress=change_while_loading)
    assert changed and indexing.alias_target(es, names) == report.index
    assert es.get(index=names.candidates, id="c-001500")["_source"]["title"] == "Chief Nursing Officer"
    assert not es.exists(index=names.candidates, id="c-001700")
    assert es.count(index=names.candidates)["count"] == 1999


def test_killed_reindex_leaves_alias_serving_and_next_run_cleans_up(es, own_settings, tmp_path):
    names = IndexNames(own_settings.index_prefix)
    first = run(es, own_settings, write_source(tmp_path / "c.jsonl", 40), tmp_path)
    source = write_source(tmp_path / "big.jsonl", 60_000)
    env = {**os.environ, "RECMATCH_ES_URL": own_settings.es_url, "RECMATCH_INDEX_PREFIX": own_settings.index_prefix,
           "RECMATCH_REINDEX_CHUNK_DOCS": "500", "RECMATCH_REINDEX_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "recmatch", "reindex", "--source", str(source),
         "--rejects", str(tmp_path / "r.jsonl")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the new index is being filled, then kill the run
        if _filling(es, names):
            break
        assert process.poll() is None, "the reindex finished before it could be killed: make the file bigger"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert indexing.alias_target(es, names) == first.index
    assert es.count(index=names.candidates)["count"] == 40
    report = run(es, own_settings, write_source(tmp_path / "next.jsonl", 25), tmp_path)
    assert indexing.alias_target(es, names) == report.index
    statuses = dict(indexing.candidate_indices(es, names))
    assert "building" not in statuses.values()


def _filling(es: Elasticsearch, names: IndexNames) -> bool:
    """A reindex has created its new index and written into it."""
    building = [name for name, status in indexing.candidate_indices(es, names) if status == "building"]
    if not building:
        return False
    es.options(ignore_status=404).indices.refresh(index=building[0])
    return es.options(ignore_status=404).count(index=building[0]).get("count", 0) > 0
