"""What a process remembers of the pipelines it saw: a guess tied to one revision of the document."""

from __future__ import annotations

from datetime import UTC, datetime

from recmatch.pipelines.service import RecentPipelines, Seen, StoredPipeline


def _pipeline(**changes: object) -> StoredPipeline:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    fields: dict[str, object] = {"title": "Backend Engineer", "crm_pipeline_id": "p-1", "tenant_id": "acme",
                                 "fingerprint": "f", "version": 2, "created_at": now, "updated_at": now,
                                 "understood": {}}
    return StoredPipeline.model_validate({**fields, **changes})


def _written(seq_no: int, version: int, primary_term: int = 1) -> dict[str, int]:
    return {"_seq_no": seq_no, "_primary_term": primary_term, "_version": version}


def test_an_update_that_is_the_next_write_is_applied_to_what_is_known():
    recent = RecentPipelines()
    recent.put("acme:p-1", Seen.of(_pipeline(), _written(seq_no=40, version=3)))
    recent.updated("acme:p-1", _written(seq_no=57, version=4), {"listed_snapshot": "v2-20261125-l0"})
    seen = recent.get("acme:p-1")
    assert seen is not None and seen.pipeline.listed_snapshot == "v2-20261125-l0"
    assert (seen.seq_no, seen.version) == (57, 4)


def test_an_update_after_someone_elses_write_forgets_the_pipeline():
    recent = RecentPipelines()
    recent.put("acme:p-1", Seen.of(_pipeline(), _written(seq_no=40, version=3)))
    recent.updated("acme:p-1", _written(seq_no=57, version=5), {"listed_snapshot": "v2-20261125-l0"})
    assert recent.get("acme:p-1") is None


def test_a_failed_update_forgets_the_pipeline():
    recent = RecentPipelines()
    recent.put("acme:p-1", Seen.of(_pipeline(), _written(seq_no=40, version=3)))
    recent.updated("acme:p-1", {"error": "document_missing_exception", "status": 404}, {"listed_snapshot": "x"})
    assert recent.get("acme:p-1") is None


def test_revisions_are_told_apart_by_sequence_number_and_primary_term():
    first = Seen.of(_pipeline(), _written(seq_no=40, version=3))
    assert first.same_revision(Seen.of(_pipeline(title="Nurse"), _written(seq_no=40, version=3)))
    assert not first.same_revision(Seen.of(_pipeline(), _written(seq_no=41, version=4)))
    assert not first.same_revision(Seen.of(_pipeline(), _written(seq_no=40, version=3, primary_term=2)))


def test_the_least_recently_used_pipelines_are_forgotten():
    recent = RecentPipelines(size=2)
    for number in range(3):
        recent.put(f"acme:p-{number}", Seen.of(_pipeline(), _written(seq_no=number, version=1)))
    assert recent.get("acme:p-0") is None and recent.get("acme:p-2") is not None
