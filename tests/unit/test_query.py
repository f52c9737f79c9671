"""The query builder and the reasons it reads back: pure code, compared as dicts."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from recmatch.core.models import PipelineIn
from recmatch.ranking.query import (
    MAX_BOOST,
    MAX_LEARNED_FACTORS,
    MAX_LEARNED_PRODUCT,
    MIN_BOOST,
    RELAXATION_STEPS,
    LearnedBoosts,
    LearnedFactor,
    RelaxStep,
    applicable_steps,
    baseline_query,
    build_query,
    count_query,
    widened_radius_km,
    widest_radius_km,
)
from recmatch.ranking.reasons import Wording
from recmatch.ranking.understand import RelatedOccupation, Understanding, understand
from recmatch.text.taxonomy import Taxonomy

SOFTWARE = "15-1252.00"
WEB = "15-1254.00"
QA = "15-1253.00"
HOSTILE = 'a) OR b:* AND {"x": 1}'

TAXONOMY = Taxonomy.from_dict({
    "source": "test",
    "credit": "",
    "occupations": {
        SOFTWARE: {
            "title": "Software Developers",
            "alt_titles": ["Software Engineer", "Backend Engineer"],
            "skills": [["Python", 4.0], ["Kubernetes", 3.0]],
            "related": [[WEB, 1], [QA, 3]],
        },
        WEB: {"title": "Web Developers", "alt_titles": ["Web Developer"], "skills": [], "related": [[SOFTWARE, 1]]},
        QA: {"title": "Software Quality Assurance Analysts and Testers", "alt_titles": ["QA Engineer"],
             "skills": [], "related": []},
    },
})


def _understand(**fields: Any) -> Understanding:
    return understand(pipeline=PipelineIn(**fields), taxonomy=TAXONOMY)


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a body."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _names(body: dict[str, Any]) -> list[str]:
    return [value for key, value in _walk(body) if key == "_name"]


def _bool(body: dict[str, Any]) -> dict[str, Any]:
    """The bool query under the ranking and (when there are locations) proximity function_scores."""
    query = body["query"]["function_score"]["query"]
    if "function_score" in query:
        query = query["function_score"]["query"]
    return query["bool"]


def _named_clause(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The query object that carries this _name (the constant_score, term or geo_distance body)."""
    found = [value for _, value in _walk(body) if isinstance(value, dict) and value.get("_name") == name]
    assert len(found) == 1, (name, found)
    return found[0]


def _occupation_clause(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The constant_score clause of the occupation dis_max whose values hold CODE."""
    found = [value for key, value in _walk(body) if key == "constant_score"
             and code in value["filter"].get("terms", {}).get("occupation_codes", ())]
    assert len(found) == 1, (code, found)
    return found[0]


def _filter_kinds(body: dict[str, Any]) -> set[str]:
    kinds = set()
    for clause in _bool(body).get("filter", []):
        text = json.dumps(clause)
        kinds.add("location" if "location:" in text else "title" if "title_norm" in text else "skills")
    return kinds


BACKEND_AUSTIN = {"title": "Backend Engineer", "skills": ["Python", "Kubernetes", "Go"], "locations": ["Austin, TX"],
                  "radius_km": 40}


# -- shape -----------------------------------------------------------------------------------------------------------


def test_body_asks_for_125_ranked_candidates_with_a_stable_order():
    body = build_query(understanding=_understand(title="Backend Engineer"))
    assert body["size"] == 125
    assert body["track_total_hits"] == 125
    assert body["sort"] == ["_score", {"candidate_id": "asc"}]
    assert {"candidate_id", "title", "skills", "location", "open_to_remote"} <= set(body["_source"]["includes"])
    ranking = body["query"]["function_score"]
    assert (ranking["score_mode"], ranking["boost_mode"]) == ("multiply", "multiply")
    json.dumps(body)  # plain JSON


def test_a_count_probe_asks_the_same_filters_for_no_hits_and_stops_at_the_list_size():
    arguments = {"understanding": _understand(**BACKEND_AUSTIN), "exclude_ids": {"c-1"}, "relax": ["wider_radius"]}
    body, probe = build_query(**arguments), count_query(**arguments)
    qualifying = _bool(body)
    assert probe == {"query": {"bool": {"filter": qualifying["filter"], "must_not": qualifying["must_not"]}},
                     "size": 0, "track_total_hits": 125}


def test_a_count_probe_without_filters_keeps_the_clauses_that_decide_who_matches():
    arguments = {"understanding": _understand(title="!!!", remote_ok=True, locations=[])}
    body, probe = build_query(**arguments), count_query(**arguments)
    assert "filter" not in _bool(body)
    assert probe == {"query": body["query"], "size": 0, "track_total_hits": 125}


def test_size_outside_the_result_window_is_refused():
    with pytest.raises(ValueError, match="size"):
        build_query(understanding=_understand(title="Backend Engineer"), size=0)


def test_title_only_pipeline_has_title_clauses_and_no_location_or_skill_filter():
    body = build_query(understanding=_understand(title="Backend Engineer"))
    assert _filter_kinds(body) == {"title"}
    assert "function_score" not in body["query"]["function_score"]["query"]  # no proximity without places
    assert set(_names(body)) == {
        "title.exact", "title.words", "title.some_words", "title.past_some_words", "title.shingles",
        f"title.past_occupation:{SOFTWARE}", "title.past_words",
    }


def test_same_occupation_counts_by_confidence_and_related_ones_less():
    understanding = _understand(title="Senior Backend Engineer")
    body = build_query(understanding=understanding)
    same = _occupation_clause(body, SOFTWARE)
    related = _occupation_clause(body, WEB)
    farther = _occupation_clause(body, QA)
    past = _named_clause(body, f"title.past_occupation:{SOFTWARE}")
    assert same["boost"] == pytest.approx(10 * understanding.occupations[0].confidence)
    assert same["boost"] > related["boost"] > farther["boost"] > 0
    assert same["boost"] > past["boost"] > 0


def test_occupation_clauses_count_their_best_match_not_their_sum():
    body = build_query(understanding=_understand(title="Backend Engineer"))
    dis_max = [value for key, value in _walk(body) if key == "dis_max"]
    codes = [code for clause in dis_max[0]["queries"]
             for code in clause["constant_score"]["filter"]["terms"]["occupation_codes"]]
    assert sorted(codes) == sorted([SOFTWARE, WEB, QA])


def test_occupations_of_one_weight_share_one_unnamed_clause_heaviest_first():
    # A title that reads as many occupations gets one clause per weight, not one per occupation: Elasticsearch
    # evaluates a handful of clauses per candidate instead of dozens, and the best one still counts alone.
    understanding = _understand(title="Backend Engineer")
    web, qa = understanding.related
    understanding = dataclasses.replace(understanding, related=(
        web, dataclasses.replace(qa, weight=web.weight), RelatedOccupation(code="15-1299.08", title="Architects",
                                                                           tier=3, weight=0.1)))
    body = build_query(understanding=understanding)
    occupations = next(value for key, value in _walk(body) if key == "dis_max")
    clauses = [clause["constant_score"] for clause in occupations["queries"]]
    assert not any("_name" in clause for clause in clauses)
    assert [(clause["boost"], sorted(clause["filter"]["terms"]["occupation_codes"])) for clause in clauses] == [
        (pytest.approx(10 * understanding.occupations[0].confidence), [SOFTWARE]),
        (pytest.approx(10 * web.weight), sorted([WEB, QA])),
        (pytest.approx(1.0), ["15-1299.08"]),
    ]


def test_related_occupations_score_but_do_not_qualify_before_relaxation():
    body = build_query(understanding=_understand(title="Backend Engineer"))
    (title_filter,) = _bool(body)["filter"]
    assert {"terms": {"occupation_codes": [SOFTWARE]}} in title_filter["bool"]["should"]


def test_each_skill_is_one_named_clause_on_the_normalised_keyword():
    body = build_query(understanding=_understand(**BACKEND_AUSTIN))
    assert _named_clause(body, "skill:python") == {"value": "python", "boost": 0.4, "_name": "skill:python"}
    assert {name for name in _names(body) if name.startswith("skill:")} == {"skill:python", "skill:kubernetes",
                                                                            "skill:go"}


def test_a_minimum_of_listed_skills_is_required_until_relaxed():
    body = build_query(understanding=_understand(**BACKEND_AUSTIN))
    (skill_filter,) = [c for c in _bool(body)["filter"] if "skills" in json.dumps(c)]
    assert skill_filter == {"bool": {"should": [{"term": {"skills": "python"}}, {"term": {"skills": "kubernetes"}},
                                                {"term": {"skills": "go"}}], "minimum_should_match": 1}}


def test_city_pipeline_filters_within_the_radius_and_decays_with_distance():
    understanding = _understand(**BACKEND_AUSTIN)
    austin = understanding.locations[0]
    body = build_query(understanding=understanding)
    within = _named_clause(body, "location:0")
    assert within == {"distance": "40km", "location.geo": {"lat": austin.lat, "lon": austin.lon}, "_name": "location:0"}
    assert "function_score" not in body["query"]["function_score"]["query"]  # within the radius: proximity is 1
    body = build_query(understanding=understanding, relax=["wider_radius"])
    proximity = body["query"]["function_score"]["query"]["function_score"]
    assert (proximity["score_mode"], proximity["boost_mode"]) == ("max", "multiply")
    gauss = proximity["functions"][0]
    assert gauss["filter"] == {"exists": {"field": "location.geo"}}
    assert gauss["gauss"]["location.geo"]["origin"] == {"lat": austin.lat, "lon": austin.lon}
    assert gauss["gauss"]["location.geo"]["offset"] == "40km"
    assert proximity["functions"][-1] == {"weight": pytest.approx(proximity["functions"][-1]["weight"])}
    assert 0 < proximity["functions"][-1]["weight"] < 1  # the floor: far away still ranks by title


def test_remote_ok_lets_open_to_remote_candidates_through_the_location_filter():
    body = build_query(understanding=_understand(**BACKEND_AUSTIN, remote_ok=True), relax=["wider_radius"])
    (location_filter,) = [c for c in _bool(body)["filter"] if "location:0" in json.dumps(c)]
    assert location_filter["bool"]["minimum_should_match"] == 1
    assert {"term": {"open_to_remote": {"value": True, "_name": "remote"}}} in location_filter["bool"]["should"]
    functions = body["query"]["function_score"]["query"]["function_score"]["functions"]
    assert {"filter": {"term": {"open_to_remote": True}}, "weight": 1.0} in functions


def test_remote_without_places_only_prefers_open_to_remote_candidates():
    body = build_query(understanding=_understand(title="Backend Engineer", locations=["Remote"]))
    assert _filter_kinds(body) == {"title"}
    assert _named_clause(body, "remote")["filter"] == {"term": {"open_to_remote": True}}


def test_unresolved_location_adds_no_location_clause():
    understanding = _understand(title="Backend Engineer", locations=["Atlantis of the Deep"])
    body = build_query(understanding=understanding)
    assert understanding.unresolved_locations == ("Atlantis of the Deep",)
    assert not any(name.startswith("location:") for name in _names(body))
    assert body == build_query(understanding=_understand(title="Backend Engineer"))


def test_several_locations_each_qualify_and_the_nearest_sets_proximity():
    body = build_query(understanding=_understand(title="Backend Engineer", locations=["Austin, TX", "London, UK"]),
                       relax=["wider_radius"])
    assert {"location:0", "location:1"} <= set(_names(body))
    proximity = body["query"]["function_score"]["query"]["function_score"]
    assert proximity["score_mode"] == "max"
    assert [f["gauss"]["location.geo"]["origin"]["lat"] > 40 for f in proximity["functions"] if "gauss" in f] == [
        False, True
    ]


@pytest.mark.parametrize(("fields", "relax", "varies"), [
    (BACKEND_AUSTIN, [], False),
    (BACKEND_AUSTIN, ["related_titles", "fewer_skills", "title_words"], False),  # not a radius: all still within
    (BACKEND_AUSTIN, ["wider_radius"], True),
    (BACKEND_AUSTIN, ["widest_radius"], True),
    (BACKEND_AUSTIN, ["remote_candidates"], True),  # far away but open to remote: the floor
    ({**BACKEND_AUSTIN, "remote_ok": True}, ["remote_candidates"], False),  # remote was welcome before: 1
    ({**BACKEND_AUSTIN, "radius_km": 500}, ["wider_radius", "widest_radius"], False),  # already the widest
    ({"title": "Backend Engineer", "locations": ["Germany"]}, ["wider_radius", "widest_radius"], False),
    ({"title": "Backend Engineer"}, ["wider_radius", "remote_candidates"], False),
])
def test_proximity_is_scored_only_where_someone_who_qualifies_is_beyond_a_radius(
        fields: dict[str, Any], relax: list[RelaxStep], varies: bool):
    body = build_query(understanding=_understand(**fields), relax=relax)
    assert ("function_score" in body["query"]["function_score"]["query"]) is varies


def test_country_location_filters_by_country_code():
    body = build_query(understanding=_understand(title="Backend Engineer", locations=["Germany"]),
                       relax=["remote_candidates"])
    assert _named_clause(body, "location:0") == {"value": "DE", "_name": "location:0"}
    functions = body["query"]["function_score"]["query"]["function_score"]["functions"]
    assert {"filter": {"term": {"location.country": "DE"}}, "weight": 1.0} in functions


# -- learned boosts and exclusions ---------------------------------------------------------------------------------


def _factor(name: str, field: str, value: object, weight: float) -> LearnedFactor:
    return LearnedFactor(name=name, filter={"term": {field: value}}, weight=weight)


def test_learned_boosts_become_filtered_weight_functions_that_multiply():
    boosts = LearnedBoosts(factors=(
        _factor(f"occupation_codes:{WEB}", "occupation_codes", WEB, 1.5),
        _factor("skills:kubernetes", "skills", "kubernetes", 1.2),
        LearnedFactor(name="years:8+", filter={"range": {"years_experience": {"gte": 8.0}}}, weight=2.5),
    ))
    ranking = build_query(understanding=_understand(title="Backend Engineer"), boosts=boosts)["query"]["function_score"]
    assert (ranking["score_mode"], ranking["boost_mode"]) == ("multiply", "multiply")
    assert ranking["max_boost"] == MAX_LEARNED_PRODUCT
    assert ranking["functions"] == [
        {"filter": {"term": {"occupation_codes": WEB}}, "weight": 1.5},
        {"filter": {"term": {"skills": "kubernetes"}}, "weight": 1.2},
        {"filter": {"range": {"years_experience": {"gte": 8.0}}}, "weight": 2.5},
    ]


def test_a_list_relaxed_to_title_words_applies_learned_factors_only_to_those_the_title_brings():
    boosts = LearnedBoosts(factors=(_factor("skills:kubernetes", "skills", "kubernetes", 2.0),))
    understanding = _understand(title="Backend Engineer")
    strict = build_query(understanding=understanding, boosts=boosts, relax=["related_titles"])
    assert strict["query"]["function_score"]["functions"] == [{"filter": {"term": {"skills": "kubernetes"}},
                                                               "weight": 2.0}]
    loose = build_query(understanding=understanding, boosts=boosts, relax=["related_titles", "title_words"])
    [function] = loose["query"]["function_score"]["functions"]
    factor, title = function["filter"]["bool"]["filter"]
    assert factor == {"term": {"skills": "kubernetes"}} and function["weight"] == 2.0
    # the title filter before relaxing to some of its words: its words, its occupations and the related ones
    assert title == build_query(understanding=understanding, relax=["related_titles"])[
        "query"]["function_score"]["query"]["bool"]["filter"][0]
    weak = _understand(title="Zxqv Wrangler")
    assert weak.weak_title
    assert build_query(understanding=weak, boosts=boosts, relax=["title_words"])["query"]["function_score"][
        "functions"] == [{"filter": {"term": {"skills": "kubernetes"}}, "weight": 2.0}]


def test_a_negative_signal_multiplies_by_a_factor_below_one_and_nothing_goes_negative():
    boosts = LearnedBoosts(factors=(
        _factor("companies:globex", "company.keyword", "globex", 0.6),
        _factor("seniority:junior", "seniority", "junior", -3.0),
        _factor("skills:python", "skills", "python", 9.0),
    ))
    body = build_query(understanding=_understand(**BACKEND_AUSTIN), boosts=boosts)
    functions = body["query"]["function_score"]["functions"]
    assert {"filter": {"term": {"company.keyword": "globex"}}, "weight": 0.6} in functions
    assert {"filter": {"term": {"seniority": "junior"}}, "weight": MIN_BOOST} in functions  # clamped
    assert {"filter": {"term": {"skills": "python"}}, "weight": MAX_BOOST} in functions  # clamped
    weights = [value for key, value in _walk(body) if key == "weight"]
    boosts_in_body = [value for key, value in _walk(body) if key == "boost"]
    assert weights and all(weight > 0 for weight in weights)
    assert boosts_in_body and all(boost >= 0 for boost in boosts_in_body)


def test_neutral_learned_boosts_add_no_function_and_the_body_stays_bounded():
    neutral = LearnedBoosts(factors=(_factor("skills:python", "skills", "python", 1.0),
                                     LearnedFactor(name="x", filter={}, weight=2.0)))
    body = build_query(understanding=_understand(title="Backend Engineer"), boosts=neutral)
    assert body["query"]["function_score"]["functions"] == []
    many = LearnedBoosts(factors=tuple(_factor(f"skills:s{n}", "skills", f"s{n}", 2.0) for n in range(100)))
    body = build_query(understanding=_understand(title="Backend Engineer"), boosts=many)
    assert len(body["query"]["function_score"]["functions"]) == MAX_LEARNED_FACTORS


def test_learned_boosts_round_trip_through_a_dict():
    boosts = LearnedBoosts(factors=(_factor(f"occupation_codes:{WEB}", "occupation_codes", WEB, 1.5),
                                    _factor("companies:globex", "company.keyword", "globex", 0.6)))
    assert LearnedBoosts.from_dict(json.loads(json.dumps(boosts.to_dict()))) == boosts


def test_excluded_candidates_are_in_must_not():
    body = build_query(understanding=_understand(title="Backend Engineer"), exclude_ids={"c-2", "c-1"})
    assert _bool(body)["must_not"] == [{"terms": {"candidate_id": ["c-1", "c-2"]}}]
    assert "must_not" not in _bool(build_query(understanding=_understand(title="Backend Engineer")))


# -- relaxation ----------------------------------------------------------------------------------------------------


def _without(body: dict[str, Any], kind: str) -> dict[str, Any]:
    stripped = copy.deepcopy(body)
    bool_query = _bool(stripped)
    bool_query["filter"] = [c for c in bool_query["filter"] if kind not in _filter_kinds_of(c)]
    return stripped


def _filter_kinds_of(clause: dict[str, Any]) -> set[str]:
    text = json.dumps(clause)
    return {"location" if "location:" in text else "title" if "title_norm" in text else "skills"}


def test_relaxation_steps_are_the_documented_ones_in_order():
    assert RELAXATION_STEPS == ("wider_radius", "related_titles", "fewer_skills", "title_words", "widest_radius",
                                "remote_candidates")


def test_wider_radius_widens_only_the_location_filter():
    understanding = _understand(**BACKEND_AUSTIN)
    strict = build_query(understanding=understanding)
    relaxed = build_query(understanding=understanding, relax=["wider_radius"])
    assert _named_clause(relaxed, "location:0")["distance"] == "120km"
    assert widened_radius_km(40) == 120 and widened_radius_km(400) == 500 and widened_radius_km(500) == 500
    _named_clause(relaxed, "location:0")["distance"] = "40km"
    assert _bool(relaxed) == _bool(strict)
    proximity = relaxed["query"]["function_score"]["query"]["function_score"]
    assert proximity["functions"][0]["gauss"]["location.geo"]["offset"] == "40km"  # the decay keeps the radius


def test_related_titles_lets_related_occupations_qualify_and_changes_nothing_else():
    understanding = _understand(**BACKEND_AUSTIN)
    strict = build_query(understanding=understanding)
    relaxed = build_query(understanding=understanding, relax=["related_titles"])
    (title_filter,) = [c for c in _bool(relaxed)["filter"] if _filter_kinds_of(c) == {"title"}]
    assert {"terms": {"occupation_codes": sorted([SOFTWARE, WEB, QA])}} in title_filter["bool"]["should"]
    assert _without(relaxed, "title") == _without(strict, "title")


def test_fewer_skills_drops_only_the_skill_requirement():
    understanding = _understand(**BACKEND_AUSTIN)
    strict = build_query(understanding=understanding)
    relaxed = build_query(understanding=understanding, relax=["fewer_skills"])
    assert _filter_kinds(relaxed) == {"title", "location"}
    assert relaxed == _without(strict, "skills")
    assert "skill:python" in _names(relaxed)  # skills still score


def test_title_words_lets_any_title_word_or_skill_qualify_and_changes_nothing_else():
    understanding = _understand(**BACKEND_AUSTIN)
    strict = build_query(understanding=understanding)
    relaxed = build_query(understanding=understanding, relax=["title_words"])
    (title_filter,) = [c for c in _bool(relaxed)["filter"] if _filter_kinds_of(c) == {"title"}]
    should = title_filter["bool"]["should"]
    assert {"match": {"title_norm": {"query": "back end engineer"}}} in should
    assert {"match": {"past_titles_norm": {"query": "back end engineer"}}} in should
    assert {"terms": {"skills": ["python", "kubernetes", "go"]}} in should
    assert _without(relaxed, "title") == _without(strict, "title")


def test_widest_radius_reaches_500_km_and_remote_candidates_lets_remote_people_in():
    understanding = _understand(**BACKEND_AUSTIN)
    widest = build_query(understanding=understanding, relax=["wider_radius", "widest_radius"])
    assert _named_clause(widest, "location:0")["distance"] == "500km"
    assert widest_radius_km(40) == 500 and widest_radius_km(800) == 800
    assert "remote" not in _names(widest)
    remote = build_query(understanding=understanding, relax=["remote_candidates"])
    assert _named_clause(remote, "remote") == {"value": True, "_name": "remote"}
    assert _filter_kinds(remote) == {"title", "skills", "location"}  # never no location filter at all


def test_all_steps_together_still_keep_a_location_filter():
    body = build_query(understanding=_understand(**BACKEND_AUSTIN), relax=RELAXATION_STEPS)
    assert _filter_kinds(body) == {"title", "location"}


def test_applicable_steps_skip_what_would_change_nothing():
    assert applicable_steps(_understand(**BACKEND_AUSTIN)) == RELAXATION_STEPS
    assert applicable_steps(_understand(title="Backend Engineer")) == ("related_titles", "title_words")
    # a title in no taxonomy already ranks by its words and skills: no title step left, and no "anywhere" step
    assert applicable_steps(_understand(title="Zzyzx Wrangler", locations=["Germany"])) == ("remote_candidates",)
    assert applicable_steps(_understand(title="QA Engineer", locations=["Austin, TX"], radius_km=500)) == (
        "title_words", "remote_candidates",
    )
    assert "remote_candidates" not in applicable_steps(_understand(**BACKEND_AUSTIN, remote_ok=True))


def _title_filter_should(body: dict[str, Any]) -> list[dict[str, Any]]:
    (title_filter,) = [c for c in _bool(body)["filter"] if _filter_kinds_of(c) == {"title"}]
    return title_filter["bool"]["should"]


def test_a_weak_title_qualifies_by_any_word_and_by_a_skill_alone_once_relaxed_to_title_words():
    # A skill the taxonomy gives a title is often a common one: alone, it would let most of a metro area in.
    understanding = _understand(title="Zzyzx Wrangler", skills=["Python"])
    assert understanding.weak_title
    should = _title_filter_should(build_query(understanding=understanding))
    assert {"match": {"title_norm": {"query": "wrangler zzyzx"}}} in should
    assert {"match": {"past_titles_norm": {"query": "wrangler zzyzx"}}} in should
    assert not [part for part in should if "skills" in part.get("terms", {})]
    assert "title_words" in applicable_steps(understanding)
    relaxed = _title_filter_should(build_query(understanding=understanding, relax=["title_words"]))
    assert relaxed == [*should, {"terms": {"skills": ["python"]}}]


def test_a_weak_title_without_words_qualifies_by_its_skills_from_the_start():
    understanding = _understand(title="Senior", skills=["Python"])
    assert understanding.weak_title and "title_words" not in applicable_steps(understanding)
    assert {"terms": {"skills": ["python"]}} in _title_filter_should(build_query(understanding=understanding))


def test_a_weak_title_without_skills_has_no_title_words_step():
    understanding = _understand(title="Zzyzx Wrangler")
    assert understanding.weak_title and "title_words" not in applicable_steps(understanding)


def test_a_senior_title_prefers_seniors_then_the_levels_next_to_it():
    understanding = _understand(title="Senior Backend Engineer")
    assert understanding.seniority == "senior"
    body = build_query(understanding=understanding)
    assert _named_clause(body, "seniority") == {"filter": {"term": {"seniority": "senior"}}, "boost": 1.5,
                                                "_name": "seniority"}
    assert _named_clause(body, "seniority.near")["filter"] == {"terms": {"seniority": ["mid", "lead"]}}
    assert "seniority" not in _names(build_query(understanding=_understand(title="Backend Engineer")))


def test_unknown_relaxation_step_is_refused():
    with pytest.raises(ValueError, match="unknown relaxation steps"):
        build_query(understanding=_understand(title="Backend Engineer"), relax=["anything_goes"])  # type: ignore[list-item]


# -- purity and safety ---------------------------------------------------------------------------------------------


def test_inputs_are_not_mutated_and_each_body_is_fresh():
    understanding = _understand(**BACKEND_AUSTIN, remote_ok=True)
    boosts = LearnedBoosts(factors=(_factor("companies:globex", "company.keyword", "globex", 0.6),))
    exclude = ["c-9", "c-1"]
    relax = ["wider_radius", "fewer_skills"]
    before = (understanding.to_dict(), boosts.to_dict(), list(exclude), list(relax))
    first = build_query(understanding=understanding, boosts=boosts, exclude_ids=exclude, relax=relax)  # type: ignore[arg-type]
    pristine = copy.deepcopy(first)
    second = build_query(understanding=understanding, boosts=boosts, exclude_ids=exclude, relax=relax)  # type: ignore[arg-type]
    assert (understanding.to_dict(), boosts.to_dict(), exclude, relax) == before
    assert first == second
    for _, value in _walk(first):
        if isinstance(value, list):
            value.clear()
    assert second == pristine


@pytest.mark.parametrize("relax", [(), RELAXATION_STEPS])
def test_hostile_input_never_reaches_a_query_string_parser(relax):
    understanding = _understand(
        title=HOSTILE, skills=["*:*", 'python" OR 1=1', "title:(x)"], locations=[HOSTILE, "Austin, TX"],
        remote_ok=True,
    )
    body = build_query(understanding=understanding, relax=relax, exclude_ids=["*"])
    keys = {key for key, _ in _walk(body)}
    assert not keys & {"query_string", "simple_query_string", "script", "script_score", "regexp", "wildcard",
                       "prefix", "fuzzy"}
    text_queries = [value for key, value in _walk(body) if key in ("match", "term", "terms", "multi_match")]
    assert text_queries


def test_baseline_is_one_bm25_multi_match_of_title_and_skills_filtered_to_the_radius():
    body = baseline_query(title="Backend Engineer", skills=["Python", "Go"], size=25)
    match = {"multi_match": {"query": "Backend Engineer Python Go",
                             "fields": ["title^3", "past_titles", "headline", "skills_text"]}}
    assert body["query"] == match
    assert body["size"] == 25
    understanding = _understand(**BACKEND_AUSTIN, remote_ok=True)
    austin = understanding.locations[0]
    placed = baseline_query(title="Backend Engineer", skills=["Python", "Go"], size=25, understanding=understanding)
    assert placed["query"] == {"bool": {"must": [match], "filter": [{"bool": {"should": [
        {"geo_distance": {"distance": "40km", "location.geo": {"lat": austin.lat, "lon": austin.lon}}},
        {"term": {"open_to_remote": True}},
    ], "minimum_should_match": 1}}]}}


# -- reasons ---------------------------------------------------------------------------------------------------------


def _hit(matched: Any, **source: Any) -> dict[str, Any]:
    return {"_source": {"candidate_id": "c-1", **source}, "matched_queries": matched}


def test_hit_reasons_name_title_occupation_skills_and_distance():
    understanding = _understand(**BACKEND_AUSTIN)
    hit = _hit(
        ["title.words", "skill:kubernetes", "skill:python", "location:0"], occupation_codes=[SOFTWARE],
        title="Senior Backend Engineer",
        location={"name": "Round Rock, TX", "geo": {"lat": 30.5083, "lon": -97.6789}},
    )
    explanation = Wording(understanding).describe(hit)
    assert explanation.reasons == (
        "title: Senior Backend Engineer ~ Software Developers",
        "skills: Python, Kubernetes",
        "28 km from Austin",
    )
    assert explanation.matched_skills == ("Python", "Kubernetes")
    assert explanation.distance_km == pytest.approx(28, abs=1.0)
    assert explanation.nearest_location == "Austin"


def test_hit_reasons_name_a_related_title_and_remote():
    understanding = _understand(**BACKEND_AUSTIN, remote_ok=True)
    hit = _hit({"remote": 0.0}, occupation_codes=[WEB], title="Web Developer", open_to_remote=True,
               location={"geo": [-0.1276, 51.5072]})
    explanation = Wording(understanding).describe(hit)
    assert explanation.reasons[0] == "related title: Web Developers"
    assert explanation.reasons[-1] == "open to remote"
    assert explanation.distance_km is not None and explanation.distance_km > 7000


def test_hit_without_coordinates_has_no_distance():
    understanding = _understand(title="Backend Engineer", locations=["Germany"])
    explanation = Wording(understanding).describe(_hit(["title.exact", "location:0"],
                                                                      title="Backend Engineer"))
    assert explanation.reasons == ("title: Backend Engineer", "in Germany")
    assert explanation.distance_km is None and explanation.matched_skills == ()


def test_hit_inside_a_region_is_in_it_rather_than_far_from_its_centre():
    understanding = _understand(title="Backend Engineer", locations=["Austin, TX", "Texas"])
    hit = _hit(["title.exact", "location:1"], title="Backend Engineer",
               location={"geo": {"lat": 29.7604, "lon": -95.3698}})  # Houston
    explanation = Wording(understanding).describe(hit)
    assert explanation.reasons == ("title: Backend Engineer", "in Texas")
    assert explanation.nearest_location == "Texas"


def test_hit_with_nothing_matched_has_no_reasons():
    explanation = Wording(_understand(title="Backend Engineer")).describe({"_source": {}})
    assert explanation.reasons == () and explanation.distance_km is None


def test_a_candidate_outside_the_radius_is_marked_as_there_by_relaxation():
    understanding = _understand(**BACKEND_AUSTIN)
    inside = Wording(understanding).describe(_hit(
        ["skill:python", "location:0"], occupation_codes=[SOFTWARE], title="Backend Engineer",
        location={"geo": {"lat": 30.5083, "lon": -97.6789}}))  # Round Rock, 28 km
    assert inside.relaxed == ()
    outside = Wording(understanding).describe(_hit(
        ["skill:python", "location:0"], occupation_codes=[SOFTWARE], title="Backend Engineer",
        location={"geo": {"lat": 29.4241, "lon": -98.4936}}))  # San Antonio, 120 km
    assert outside.relaxed == ("outside_radius",)


def test_remote_counts_as_within_reach_only_when_the_pipeline_accepts_remote():
    far_remote = _hit(["skill:go", "remote"], occupation_codes=[SOFTWARE], title="Backend Engineer",
                      open_to_remote=True, location={"geo": [-0.1276, 51.5072]})
    assert Wording(_understand(**BACKEND_AUSTIN, remote_ok=True)).describe(far_remote).relaxed == ()
    assert Wording(_understand(**BACKEND_AUSTIN)).describe(far_remote).relaxed == ("outside_radius",)


def test_related_titles_title_words_and_fewer_skills_are_marked():
    understanding = _understand(**BACKEND_AUSTIN)
    austin = {"geo": {"lat": 30.2672, "lon": -97.7431}}
    related = Wording(understanding).describe(_hit(
        ["skill:go"], occupation_codes=[WEB], title="Web Developer", location=austin))
    assert related.relaxed == ("related_title",)
    words = Wording(understanding).describe(_hit(["title.some_words"], title="Sound Engineer",
                                                               location=austin))
    assert words.relaxed == ("title_words", "fewer_skills")


def test_a_weak_title_marks_only_who_shares_nothing_but_a_skill_with_it():
    understanding = _understand(title="Zzyzx Wrangler", skills=["Python"])
    wording = Wording(understanding)
    assert wording.describe(_hit(["skill:python"], title="Cook")).relaxed == ("title_words",)
    assert wording.describe(_hit(["title.some_words", "skill:python"], title="Wrangler")).relaxed == ()
    assert wording.describe(_hit(["title.past_some_words", "skill:python"], title="Cook")).relaxed == ()
    # without words to qualify on, a skill qualifies from the start
    assert Wording(_understand(title="Senior", skills=["Python"])).describe(
        _hit(["skill:python"], title="Cook")).relaxed == ()
