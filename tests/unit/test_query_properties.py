"""Hostile pipelines through PipelineIn → understand → build_query: always a valid, bounded, injection-free body.

Hypothesis draws arbitrary unicode (lone surrogates, combining marks, characters whose NFKC form is 18 characters
long), Elasticsearch query syntax, JSON-looking text and strings at the model's length limits. The real shipped
taxonomy and gazetteer are used, so what is checked is what the API would send.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recmatch.core.models import PipelineIn
from recmatch.ranking.learning import FEATURE_KINDS, Example, LearningState, learned_boosts
from recmatch.ranking.query import MAX_BOOST, MIN_BOOST, RELAXATION_STEPS, LearnedBoosts, LearnedFactor, build_query
from recmatch.ranking.understand import Understanding, understand
from recmatch.text.taxonomy import get_taxonomy
from tests.unit.test_query import _walk

TAXONOMY = get_taxonomy()
LIST_SIZE = 125
# Query types that parse a syntax of their own or run code: pipeline text must never reach one.
FORBIDDEN = frozenset({"query_string", "simple_query_string", "script", "script_score", "regexp", "wildcard"})
MAX_BODY_BYTES = 256 * 1024  # without exclusions; the largest legal pipeline stays far below it (see the test)
MAX_CLAUSES = 400
PROPERTIES = settings(max_examples=150, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

SYNTAX = [':', '*', '?', '~', '^', '(', ')', '{', '}', '[', ']', '"', '\\', '/', ' AND ', ' OR ', ' NOT ', '&&', '||',
          '!', '+', '-', '=', '<', '>', '%', '#', '@', '\x00', '\n', '\t', '\u200b', '\ufeff']
JSONISH = ['{"query_string": {"query": "*"}}', '{"script": {"source": "Math.random()"}}', '"}]}}', '{"$gt": ""}',
           '__proto__', '${jndi:ldap://x}', '<script>alert(1)</script>', "'; DROP TABLE x; --", '{{7*7}}', 'null']
# Lone surrogates (the model refuses them), characters that grow under NFKD/NFKC or fold into other letters.
GROWING = ['\ud800', '\udfff', '\ufdfa', '\ufb03', '\u2474', '\u3390', 'ß', 'Æ', 'İ', '\u0301', '\U0001d400',
           'ｓｏｆｔｗａｒｅ']
WORDS = ['Senior', 'Software', 'Engineer', 'Nurse', 'Registered', 'Sr.', 'Mgr', 'Data', 'C++', 'C#', '.NET',
         'Austin, TX', 'Remote', 'Germany', 'Python', 'Kubernetes', 'New York']


def _pieces() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),  # any code point but surrogates (GROWING adds those)
        st.sampled_from(SYNTAX + JSONISH + GROWING + WORDS),
    )


def _field_text(max_len: int) -> st.SearchStrategy[str]:
    """Text a CRM may send for one field: glued hostile pieces, or a repeated piece filling the whole limit."""
    glued = st.lists(_pieces(), min_size=1, max_size=12).map("".join)
    filling = _pieces().filter(bool).map(lambda piece: (piece * (max_len // len(piece) + 1))[:max_len])
    return st.one_of(glued, filling).map(lambda text: text[:max_len]).filter(lambda text: text.strip())


@st.composite
def pipeline_fields(draw: st.DrawFn) -> dict[str, Any]:
    """What a CRM may send within the documented limits (the model still refuses lone surrogates)."""
    return {
        "title": draw(_field_text(200)),
        "locations": draw(st.lists(_field_text(200), max_size=10)),
        "skills": draw(st.lists(_field_text(200), max_size=50)),
        "remote_ok": draw(st.booleans()),
        "radius_km": draw(st.floats(min_value=1, max_value=500, allow_nan=False)),
        "access_restricted": draw(st.booleans()),
    }


def _accepted(fields: dict[str, Any]) -> PipelineIn | None:
    """The model's verdict: a pipeline, or None when it refused the text (which the API answers with a 422)."""
    try:
        return PipelineIn(**fields)
    except ValidationError as error:
        # Only unencodable text may be refused here: everything else was drawn within the limits.
        assert {problem["type"] for problem in error.errors()} == {"string_unicode"}, error
        event("refused: lone surrogate")
        return None


def _stored_text(max_len: int) -> st.SearchStrategy[str]:
    """Text read back from Elasticsearch (learned keys come from candidate documents): valid UTF-8."""
    return _field_text(max_len).filter(lambda text: not any("\ud800" <= char <= "\udfff" for char in text))


_weights = st.floats(allow_nan=True, allow_infinity=True, width=64)
_factors = st.builds(
    lambda field, value, weight: LearnedFactor(name=f"{field}:{value}", filter={"term": {field: value}},
                                               weight=weight),
    st.sampled_from(("occupation_codes", "skills", "company.keyword", "seniority", "title_norm")),
    _stored_text(200), _weights,
)
boosts = st.builds(LearnedBoosts, factors=st.lists(_factors, max_size=40).map(tuple))
relaxations = st.lists(st.sampled_from(RELAXATION_STEPS), unique=True).map(tuple)




def _numbers(node: Any) -> Iterator[float]:
    if isinstance(node, bool):
        return
    if isinstance(node, int | float):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _numbers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _numbers(item)


def _reference_keys() -> frozenset[str]:
    """Every key a body may hold: those of the richest pipeline, with every relaxation, boost kind and exclusion."""
    rich = understand(pipeline=PipelineIn(
        title="Senior Software Engineer", locations=["Austin, TX", "Germany", "Remote", "Boston, MA"],
        skills=["Python", "Kubernetes", "SQL", "Go", "Java"], remote_ok=True, radius_km=40), taxonomy=TAXONOMY)
    examples = [Example(candidate_id=f"c-{n}", signal="save", occupation_codes=("15-1252.00",),
                        skills=("python", "kubernetes"), title_norm="senior software engineer", company="Acme",
                        seniority="senior", years=12.0, geo=(30.3, -97.7), open_to_work=True, open_to_remote=True)
                for n in range(4)]
    examples += [Example(candidate_id=f"d-{n}", signal="dismiss", reason="other", occupation_codes=("41-4012.00",),
                         skills=("excel",), title_norm="sales agent", company="Globex", seniority="junior", years=1.0,
                         geo=(52.5, 13.4)) for n in range(4)]
    learned = learned_boosts(LearningState(examples=tuple(examples)), understanding=rich)
    assert learned is not None
    every_kind = tuple(LearnedFactor(name=f"{kind.name}:{key}", filter=kind.clause(key, rich) or {}, weight=1.5)
                       for kind in FEATURE_KINDS.values() for key in kind.keys(examples[0], rich)[:1])
    learned = LearnedBoosts(factors=learned.factors + every_kind)
    keys: set[str] = set()
    for relax in ((), RELAXATION_STEPS):
        body = build_query(understanding=rich, boosts=learned, exclude_ids=["c-1"], relax=relax)
        keys |= {key for key, _ in _walk(body)}
    # A title of punctuation only maps to nothing: the bool query falls back to match_all.
    empty = understand(pipeline=PipelineIn(title="!!!"), taxonomy=TAXONOMY)
    keys |= {key for key, _ in _walk(build_query(understanding=empty))}
    return frozenset(keys)


REFERENCE_KEYS = _reference_keys()


def _check_body(body: dict[str, Any]) -> None:
    wire = orjson.dumps(body)  # what the transport sends (orjson refuses lone surrogates and NaN)
    assert json.loads(wire) == json.loads(json.dumps(body, allow_nan=False))
    keys = [key for key, _ in _walk(body)]
    assert not FORBIDDEN & set(keys), FORBIDDEN & set(keys)
    # No pipeline text ever becomes a key (a field name or a query type): every key is one the builder writes.
    assert set(keys) <= REFERENCE_KEYS, set(keys) - REFERENCE_KEYS
    assert body["size"] <= LIST_SIZE and body["track_total_hits"] <= LIST_SIZE
    without_exclusions = {**body, "query": _drop_exclusions(body["query"])}
    assert len(orjson.dumps(without_exclusions)) < MAX_BODY_BYTES
    clauses = sum(1 for key, _ in _walk(body) if key in {"term", "terms", "match", "geo_distance", "exists",
                                                          "match_all", "constant_score", "gauss"})
    assert clauses <= MAX_CLAUSES, clauses
    assert all(math.isfinite(number) for number in _numbers(body))
    for key, value in _walk(body):
        if key == "functions":
            for function in value:
                if "weight" in function:
                    assert function["weight"] > 0, function
        if key == "boost":
            assert value > 0
        if key == "decay":
            assert 0 < value < 1
        if key == "minimum_should_match":
            assert isinstance(value, int) and value >= 1
    for function in body["query"]["function_score"]["functions"]:
        assert MIN_BOOST <= function["weight"] <= MAX_BOOST, function


def _drop_exclusions(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _drop_exclusions(value) for key, value in node.items() if key != "must_not"}
    if isinstance(node, list):
        return [_drop_exclusions(item) for item in node]
    return node


@PROPERTIES
@given(fields=pipeline_fields(), learned=st.none() | boosts, relax=relaxations)
@example(fields={"title": 'a) OR b:* AND {"x": 1}', "skills": ['\\"*', "AND", '{"script": 1}'],
                 "locations": ["Remote", "((("]}, learned=None, relax=())
@example(fields={"title": "\ufdfa" * 200, "skills": ["\ufdfa" * 200] * 50, "locations": ["\ufdfa" * 200] * 10},
         learned=None, relax=RELAXATION_STEPS)
@example(fields={"title": "Software Engineer", "skills": [f"skill {n} " + "*" * 180 for n in range(50)],
                 "locations": ["Austin, TX", "Germany", "Remote", "Boston, MA", "London", "Paris", "Tokyo", "Lagos",
                               "Sydney", "Toronto"], "remote_ok": True, "radius_km": 500},
         learned=LearnedBoosts(factors=tuple(LearnedFactor(name=f"skills:s{n}", filter={"term": {"skills": f"s{n}"}},
                                                         weight=2.0) for n in range(8))),
         relax=RELAXATION_STEPS)
def test_any_pipeline_gives_a_valid_bounded_body(fields: dict[str, Any], learned: LearnedBoosts | None,
                                                 relax: tuple[str, ...]) -> None:
    pipeline = _accepted(fields)
    if pipeline is None:
        return
    understanding = understand(pipeline=pipeline, taxonomy=TAXONOMY)
    body = build_query(understanding=understanding, boosts=learned, relax=relax, size=LIST_SIZE)
    _check_body(body)


@PROPERTIES
@given(fields=pipeline_fields())
def test_the_stored_understanding_survives_a_json_round_trip(fields: dict[str, Any]) -> None:
    pipeline = _accepted(fields)
    if pipeline is None:
        return
    understanding = understand(pipeline=pipeline, taxonomy=TAXONOMY)
    # The pipeline document holds to_dict(); build_query must work on what comes back from Elasticsearch.
    stored = json.loads(json.dumps(understanding.to_dict()))
    assert Understanding.from_dict(stored) == understanding


@PROPERTIES
@given(fields=pipeline_fields(), excluded=st.lists(st.from_regex(r"\A[A-Za-z0-9._:@\-]{1,128}\Z"), max_size=300))
def test_exclusions_grow_the_body_linearly_and_stay_values(fields: dict[str, Any], excluded: list[str]) -> None:
    pipeline = _accepted(fields)
    if pipeline is None:
        return
    understanding = understand(pipeline=pipeline, taxonomy=TAXONOMY)
    body = build_query(understanding=understanding, exclude_ids=excluded)
    _check_body(body)
    plain = build_query(understanding=understanding)
    extra = len(orjson.dumps(body)) - len(orjson.dumps(plain))
    assert extra <= 60 + sum(len(candidate_id) + 3 for candidate_id in set(excluded))


@pytest.mark.parametrize("fields", [
    {"title": "x" * 201},
    {"title": " \t\n "},
    {"title": "ok", "skills": ["s"] * 51},
    {"title": "ok", "skills": ["x" * 201]},
    {"title": "ok", "locations": ["Austin"] * 11},
    {"title": "ok", "locations": ["x" * 201]},
    {"title": "ok", "radius_km": float("nan")},
    {"title": "ok", "radius_km": float("inf")},
    {"title": "ok", "radius_km": 0},
    {"title": "ok", "query_string": {"query": "*"}},
    {"title": "\ud800 Engineer"},
    {"title": "ok", "skills": ["\udfff"]},
    {"title": "ok", "locations": ["\ud83d"]},
])
def test_input_beyond_the_limits_is_refused_before_the_builder(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PipelineIn(**fields)
