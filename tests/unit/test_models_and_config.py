"""Candidate validation, settings validation, mapping loading, source reading: pure code, no Elasticsearch."""

from __future__ import annotations

import gzip
import json

import pytest
from pydantic import ValidationError

from recmatch.core.config import ES_VERSION, Settings
from recmatch.core.es import IndexNames, load_mapping, mapping_names
from recmatch.core.models import CandidateIn
from recmatch.indexing.reindex import read_source, validation_reason

VALID = {"candidate_id": "c-1", "name": "Ada Park", "title": "Senior Software Engineer"}


def test_minimal_candidate_is_valid_and_export_defaults_to_not_allowed():
    candidate = CandidateIn.model_validate(VALID)
    assert candidate.allow_export is False
    assert candidate.skills == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"candidate_id": "has space"}, "candidate_id"),
        ({"location": {"name": "Austin", "lat": 30.0}}, "location"),
        ({"location": {"lat": 91, "lon": 0}}, "location.lat"),
        ({"years_experience": -1}, "years_experience"),
        ({"skills": ["x"] * 101}, "skills"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_candidate_reason_names_the_field(change, field):
    with pytest.raises(ValidationError) as error:
        CandidateIn.model_validate_json(json.dumps({**VALID, **change}))
    assert validation_reason(error.value).startswith(field)


def test_malformed_json_gets_a_reason():
    with pytest.raises(ValidationError) as error:
        CandidateIn.model_validate_json(b'{"candidate_id": "c-1",')
    assert "JSON" in validation_reason(error.value)


def test_settings_reject_url_without_scheme():
    with pytest.raises(ValidationError, match="http"):
        Settings(es_url="localhost:9200")


def test_settings_reject_half_of_basic_auth():
    with pytest.raises(ValidationError, match="USERNAME"):
        Settings(es_username="elastic")


def test_local_node_version_is_a_9x_pin():
    assert ES_VERSION.startswith("9.")
    with pytest.raises(ValidationError):
        Settings(local_es_version="8.19.0")


def test_mapping_loader_applies_deployment_shards_and_replicas():
    body = load_mapping("candidates", shards=3, replicas=1)
    assert body["settings"]["index"]["number_of_shards"] == 3
    assert body["settings"]["index"]["number_of_replicas"] == 1
    assert body["mappings"]["_meta"]["mapping_version"] >= 1
    assert body["mappings"]["properties"]["location"]["properties"]["geo"]["type"] == "geo_point"


def test_mapping_loader_returns_a_fresh_copy_each_time():
    load_mapping("candidates")["mappings"]["properties"].clear()
    assert load_mapping("candidates")["mappings"]["properties"]


CORE_ONLY_FILTERS = {"lowercase", "shingle"}


@pytest.mark.parametrize("name", mapping_names())
def test_mappings_use_core_analysis_only(name):
    analysis = load_mapping(name)["settings"].get("analysis", {})
    for spec in analysis.get("filter", {}).values():
        assert spec["type"] in CORE_ONLY_FILTERS
    for spec in analysis.get("analyzer", {}).values():
        assert spec["tokenizer"] == "standard"
        assert set(spec["filter"]) <= CORE_ONLY_FILTERS | set(analysis.get("filter", {}))


def test_index_names_share_one_prefix():
    names = IndexNames("acme")
    assert names.candidates == "acme-candidates"
    assert names.candidates_version("20261125") == "acme-candidates-v20261125"
    assert names.candidates_pattern == "acme-candidates-v*"


def test_read_source_streams_plain_and_gzip_with_line_numbers(tmp_path):
    text = b'{"a": 1}\n\n{"b": 2}\n'
    (tmp_path / "c.jsonl").write_bytes(text)
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(text))
    for name in ("c.jsonl", "c.jsonl.gz"):
        lines = [(number, raw) for number, raw, _ in read_source(tmp_path / name)]
        assert lines == [(1, b'{"a": 1}'), (3, b'{"b": 2}')]


def test_every_mapping_declares_a_version_and_strict_fields():
    for name in mapping_names():
        body = load_mapping(name)
        assert body["mappings"]["_meta"]["mapping_version"] >= 1, name
        assert body["mappings"]["dynamic"] == "strict", name
