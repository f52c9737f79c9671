"""Learning from hiring signals: the discriminative learner on small hand-made cases, compared as values."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from recmatch.core.models import PipelineIn
from recmatch.ranking.learning import (
    FEATURE_KINDS,
    MAX_EXAMPLES,
    MAX_FACTORS,
    Example,
    LearningState,
    describe,
    example_of,
    learned_boosts,
    record,
    remove_item,
)
from recmatch.ranking.query import MAX_BOOST, MAX_LEARNED_PRODUCT, MIN_BOOST, build_query
from recmatch.ranking.understand import Understanding, understand
from recmatch.text.taxonomy import Taxonomy

SOFTWARE = "15-1252.00"
SALES = "41-4012.00"
AUSTIN = (30.2672, -97.7431)
ROUND_ROCK = (30.5083, -97.6789)  # ~27 km from Austin
SAN_MARCOS = (29.8833, -97.9414)  # ~47 km from Austin


@pytest.fixture(scope="module")
def austin() -> Understanding:
    return understand(pipeline=PipelineIn(title="Software Engineer", locations=["Austin, TX"], skills=["Python"],
                                          radius_km=80), taxonomy=Taxonomy.load())


def developer(number: int, **changes: Any) -> Example:
    """A software developer in Austin; each test changes what it is about."""
    base = Example(candidate_id=f"c-{number}", signal="save", occupation_codes=(SOFTWARE,),
                   skills=("python", "postgresql"), title_norm="software engineer", company=f"Company {number}",
                   seniority="mid", years=5.0, geo=AUSTIN)
    return replace(base, **changes)


def state_of(*examples: Example) -> LearningState:
    state = LearningState()
    for example in examples:
        state = record(state, example=example)
    return state


def factors(state: LearningState, understanding: Understanding) -> dict[str, float]:
    boosts = learned_boosts(state, understanding=understanding)
    return {} if boosts is None else {factor.name: factor.weight for factor in boosts.factors}


def test_nothing_learned_gives_no_boosts_and_says_nothing(austin: Understanding) -> None:
    assert learned_boosts(LearningState(), understanding=austin) is None
    assert describe(LearningState(), understanding=austin) == []
    only_saves = state_of(*(developer(n) for n in range(5)))
    assert learned_boosts(only_saves, understanding=austin) is None  # nothing to tell them apart from


def test_a_skill_every_save_has_and_no_dismissal_has_is_learned(austin: Understanding) -> None:
    saves = [developer(n, skills=("python", "postgresql", "kubernetes")) for n in range(4)]
    dismissals = [developer(10 + n, signal="dismiss", reason="skills") for n in range(4)]
    learned = factors(state_of(*saves, *dismissals), austin)
    assert 1.5 < learned["skills:kubernetes"] <= MAX_BOOST
    assert "skills:python" not in learned and "skills:postgresql" not in learned  # shared by both sides
    text = describe(state_of(*saves, *dismissals), understanding=austin)[0].text
    assert text == "more like: kubernetes (4 of 4 saves have it, 0 of 4 dismissals)"


def test_features_shared_by_saves_and_dismissals_are_not_learned(austin: Understanding) -> None:
    saves = [developer(n) for n in range(4)]
    dismissals = [developer(10 + n, signal="dismiss", reason=reason)
                  for n, reason in enumerate(("skills", "seniority", "title", "other"))]
    assert factors(state_of(*saves, *dismissals), austin) == {}


def test_a_single_save_does_not_make_an_employer_preference(austin: Understanding) -> None:
    one = [developer(0, company="Tern Systems"), *(developer(n) for n in range(1, 4))]
    dismissals = [developer(10 + n, signal="dismiss", reason="other") for n in range(4)]
    assert not any(name.startswith("companies:") for name in factors(state_of(*one, *dismissals), austin))
    three = [developer(n, company="Tern Systems") for n in range(3)]
    assert factors(state_of(*three, *dismissals), austin)["companies:tern systems"] > 1.0
    item = next(i for i in describe(state_of(*three, *dismissals), understanding=austin) if i.kind == "companies")
    assert item.label == "people at Tern Systems"  # as the candidates spell it


def test_a_dismissal_blames_only_what_its_reason_names(austin: Understanding) -> None:
    saves = [developer(n, skills=("python", "kubernetes")) for n in range(3)]
    for_title = [developer(10 + n, signal="dismiss", reason="title", occupation_codes=(SALES,), skills=("excel",),
                           title_norm="sales representative") for n in range(3)]
    learned = factors(state_of(*saves, *for_title), austin)
    assert learned[f"occupation_codes:{SALES}"] < 1.0
    assert not any(name.startswith("skills:") for name in learned)  # a title dismissal says nothing about skills


def test_years_and_distance_become_ranges(austin: Understanding) -> None:
    saves = [developer(n, years=12.0, geo=ROUND_ROCK) for n in range(4)]
    juniors = [developer(10 + n, signal="dismiss", reason="seniority", years=3.0, geo=ROUND_ROCK) for n in range(3)]
    far = [developer(20 + n, signal="dismiss", reason="location", years=12.0, geo=SAN_MARCOS) for n in range(3)]
    state = state_of(*saves, *juniors, *far)
    boosts = learned_boosts(state, understanding=austin)
    assert boosts is not None
    filters = {factor.name: factor.filter for factor in boosts.factors}
    assert any(name.startswith("years:") and f["range"]["years_experience"]["gte"] > 3 for name, f in filters.items())
    near = [f for name, f in filters.items() if name.startswith("distance:")]
    assert near and all("geo_distance" in f for f in near)
    words = [item.text for item in describe(state, understanding=austin)]
    assert sum(text.startswith("more like: closer to Austin") for text in words) == 1  # one line per scale
    assert sum("more experienced" in text for text in words) == 1
    assert not any("less experienced" in text for text in words)  # never contradictory


def test_noise_learns_nothing(austin: Understanding) -> None:
    # Saves and dismissals with the same mix of skills, employers and years: nothing separates them.
    mixes = [("kubernetes",), ("go",), ("kubernetes", "go"), ()]
    examples = []
    for n in range(16):
        signal = "save" if n % 2 == 0 else "dismiss"
        examples.append(developer(n, signal=signal, reason=None if signal == "save" else "other",
                                  skills=("python", *mixes[(n // 2) % 4]), company=f"Co {(n // 2) % 4}",
                                  years=float(3 + 4 * ((n // 2) % 4))))
    assert factors(state_of(*examples), austin) == {}


def test_passed_over_candidates_are_weak_negatives(austin: Understanding) -> None:
    saves = [developer(n, skills=("python", "kubernetes")) for n in range(3)]
    passed = [developer(10 + n, signal="passed") for n in range(10)]
    # Passed over alone, nobody said what was wrong with them: nothing is learned from it.
    assert not any(name.startswith("skills:") for name in factors(state_of(*saves, *passed), austin))
    one_dismissal = [developer(30, signal="dismiss", reason="skills")]
    with_passed = factors(state_of(*saves, *one_dismissal, *passed), austin)
    alone = factors(state_of(*saves, *one_dismissal, developer(31, signal="dismiss", reason="title")), austin)
    assert with_passed["skills:kubernetes"] > alone.get("skills:kubernetes", 1.0)  # they add to a dismissal
    dismissed = factors(state_of(*saves, *(replace(p, signal="dismiss", reason="skills") for p in passed)), austin)
    assert dismissed["skills:kubernetes"] > with_passed["skills:kubernetes"]


def test_a_removed_item_is_neither_applied_nor_shown(austin: Understanding) -> None:
    saves = [developer(n, skills=("python", "kubernetes")) for n in range(4)]
    state = state_of(*saves, *(developer(10 + n, signal="dismiss", reason="skills") for n in range(4)))
    removed = remove_item(state, kind="skills", key="kubernetes")
    assert "skills:kubernetes" in factors(state, austin)
    assert "skills:kubernetes" not in factors(removed, austin)
    assert all(item.key != "kubernetes" for item in describe(removed, understanding=austin))
    assert record(removed, example=developer(99)).removed == removed.removed  # stays removed as signals come
    with pytest.raises(ValueError, match="unknown kind"):
        remove_item(state, kind="astrology", key="leo")


def test_learned_boosts_feed_the_query_builder_bounded(austin: Understanding) -> None:
    saves = [developer(n, skills=("python", "kubernetes"), company="Tern Systems", years=15.0) for n in range(6)]
    dismissals = [developer(10 + n, signal="dismiss", reason="other", occupation_codes=(SALES,), years=1.0)
                  for n in range(6)]
    state = state_of(*saves, *dismissals)
    boosts = learned_boosts(state, understanding=austin)
    assert boosts is not None and len(boosts.factors) <= MAX_FACTORS
    shown = {f"{item.kind}:{item.key}" for item in describe(state, understanding=austin)}
    assert shown and shown <= {factor.name for factor in boosts.factors}  # says what it applies, nothing else
    body = build_query(understanding=austin, boosts=boosts, exclude_ids=["c-1"])
    outer = body["query"]["function_score"]
    assert outer["functions"] and all(MIN_BOOST <= f["weight"] <= MAX_BOOST for f in outer["functions"])
    assert outer["max_boost"] == MAX_LEARNED_PRODUCT
    assert {"filter": {"term": {"skills": "kubernetes"}},
            "weight": next(f.weight for f in boosts.factors if f.name == "skills:kubernetes")} in outer["functions"]


def test_example_of_reads_a_candidate_document() -> None:
    source = {
        "candidate_id": "c-1", "title": "Senior  Software Engineer", "occupation_codes": [SOFTWARE, SOFTWARE],
        "skills": ["Python", " kubernetes "], "company": "Acme  Pay", "seniority": "senior", "years_experience": 8,
        "open_to_work": True, "location": {"name": "Austin, TX, US", "geo": {"lat": 30.3, "lon": -97.7}},
    }
    example = example_of(source, signal="dismiss", reason="skills")
    assert example == Example(candidate_id="c-1", signal="dismiss", reason="skills", occupation_codes=(SOFTWARE,),
                              skills=("python", "kubernetes"), title_norm="senior software engineer",
                              company="Acme Pay", seniority="senior", years=8.0, geo=(30.3, -97.7), open_to_work=True)
    assert example_of({"candidate_id": "c-2"}, signal="save") == Example(candidate_id="c-2", signal="save")
    with pytest.raises(ValueError):
        example_of(source, signal="save", reason="title")


def test_state_round_trips_and_keeps_the_newest_examples() -> None:
    state = remove_item(state_of(developer(1), developer(2, signal="dismiss", reason="title")),
                        kind="skills", key="go")
    assert LearningState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    again = record(state, example=developer(1, signal="dismiss", reason="other"))  # the newer one replaces it
    assert [(e.candidate_id, e.signal) for e in again.examples] == [("c-2", "dismiss"), ("c-1", "dismiss")]
    many = state_of(*(developer(n) for n in range(MAX_EXAMPLES + 5)))
    assert len(many.examples) == MAX_EXAMPLES and many.examples[0].candidate_id == "c-5"
    assert LearningState.from_dict({"v": 1, "skills": {"python": [2, 0]}}) == LearningState()  # the first form
    assert LearningState.from_dict(None) == LearningState()
    with pytest.raises(ValueError):
        LearningState.from_dict({"v": 2, "examples": [{"id": "c-1", "s": "applause"}]})


def test_every_kind_declares_a_filter_and_words(austin: Understanding) -> None:
    example = developer(1, open_to_work=True, open_to_remote=True)
    for kind in FEATURE_KINDS.values():
        for key in kind.keys(example, austin):
            assert kind.clause(key, austin), (kind.name, key)
            assert kind.words(key, "more", key), (kind.name, key)
