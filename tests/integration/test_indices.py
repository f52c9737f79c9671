"""Index set-up against a real node: created when missing, upgraded in place when a mapping gains fields."""

from __future__ import annotations

from recmatch.core.es import IndexNames, ensure_indices, load_mapping


def test_an_older_index_gains_the_fields_of_a_newer_mapping(es, settings):
    names = IndexNames(f"{settings.index_prefix}-upgrade")
    old = load_mapping("pipelines")
    del old["mappings"]["properties"]["acted_candidate_ids"]
    old["mappings"]["_meta"]["mapping_version"] = 1
    es.indices.create(index=names.pipelines, **old)
    ensure_indices(es, names, "pipelines")
    upgraded = es.indices.get_mapping(index=names.pipelines)[names.pipelines]["mappings"]
    assert "acted_candidate_ids" in upgraded["properties"]
    assert upgraded["_meta"]["mapping_version"] == load_mapping("pipelines")["mappings"]["_meta"]["mapping_version"]
    ensure_indices(es, names, "pipelines")  # idempotent
