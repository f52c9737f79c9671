"""Learning from hiring signals: pure code, compared as values."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from recmatch.core.models import PipelineIn
from recmatch.ranking.learning import (
    CandidateFeatures,
    FeedbackCounts,
    KeyCounts,
    describe,
    features_of,
    home_regions,
    learned_boosts,
    merged,
    record,
)
from recmatch.ranking.query import MAX_BOOST, MIN_BOOST, build_query
from recmatch.ranking.understand import understand
from recmatch.text.taxonomy import Taxonomy

SOFTWARE = "15-1252.00"
SALES = "41-4012.00"

DEVELOPER = CandidateFeatures(
    occupation_codes=(SOFTWARE,),
    skills=("python", "kubernetes", "postgresql"),
    company="Acme Pay",
    seniority="senior",
    country="US",
    region="TX",
)
SALESPERSON = CandidateFeatures(
    occupation_codes=(SALES,),
    skills=("salesforce", "microsoft excel"),
    company="Vantage Sales Co",
    seniority="mid",
    country="GB",
)
EMPTY = FeedbackCounts()


def after(*signals: tuple[CandidateFeatures, str, str | None]) -> FeedbackCounts:
    counts = EMPTY
    for features, signal, reason in signals:
        counts = record(counts, features=features, signal=signal, reason=reason)  # type: ignore[arg-type]
    return counts


def boosts_of(counts: FeedbackCounts, **kwargs: object) -> dict[str, Any]:
    boosts = learned_boosts(counts, **kwargs)  # type: ignore[arg-type]
    assert boosts is not None
    return boosts.to_dict()


def test_features_of_reads_a_candidate_document() -> None:
    source = {
        "candidate_id": "c-1",
        "occupation_codes": [SOFTWARE, SOFTWARE],
        "skills": ["python", " kubernetes "],
        "company": "Acme  Pay",
        "seniority": "senior",
        "location": {"name": "Austin, TX, US", "country": "us", "region": "TX", "geo": {"lat": 30.3, "lon": -97.7}},
    }
    features = features_of(source)
    assert features == CandidateFeatures(
        occupation_codes=(SOFTWARE,), skills=("python", "kubernetes"), company="Acme Pay", seniority="senior",
        country="US", region="TX",
    )
    assert features.keys("regions") == ("US-TX",)
    assert features_of({"candidate_id": "c-2"}) == CandidateFeatures()


def test_nothing_learned_gives_no_boosts() -> None:
    assert learned_boosts(EMPTY) is None
    assert describe(EMPTY) == []


def test_saves_raise_a_skills_weight() -> None:
    one = boosts_of(after((DEVELOPER, "save", None)))
    three = boosts_of(after(*[(DEVELOPER, "save", None)] * 3))
    assert 1.0 < one["skills"]["kubernetes"] < three["skills"]["kubernetes"] <= MAX_BOOST
    assert three["occupation_codes"][SOFTWARE] > 1.0


def test_inmail_and_export_are_positive_like_save() -> None:
    saved = learned_boosts(after((DEVELOPER, "save", None)))
    assert learned_boosts(after((DEVELOPER, "inmail", None))) == saved
    assert learned_boosts(after((DEVELOPER, "export", None))) == saved


def test_dismissal_with_reason_location_lowers_that_region_and_candidates_beyond_the_radius_only() -> None:
    counts = after((SALESPERSON, "dismiss", "location"), (SALESPERSON, "dismiss", "location"))
    boosts = boosts_of(counts)
    assert boosts["regions"]["GB"] < 1.0
    assert MIN_BOOST <= boosts["beyond_radius"] < 1.0
    assert {kind: weights for kind, weights in boosts.items() if weights} == {
        "regions": boosts["regions"], "beyond_radius": boosts["beyond_radius"]}
    assert counts.occupation_codes == {} and counts.skills == {} and counts.titles == {}


def test_dismissal_with_reason_title_lowers_its_occupations_only() -> None:
    boosts = boosts_of(after((SALESPERSON, "dismiss", "title")))
    assert boosts["occupation_codes"][SALES] < 1.0
    assert not boosts["skills"] and not boosts["regions"] and not boosts["companies"]


def test_dismissal_with_reason_other_is_a_weak_negative_on_every_kind() -> None:
    vague = after(*[(SALESPERSON, "dismiss", "other")] * 4)
    targeted = after(*[(SALESPERSON, "dismiss", "title")] * 4)
    assert all(vague.of(kind) for kind in ("occupation_codes", "skills", "companies", "seniority", "regions"))
    vague_weight = boosts_of(vague)["occupation_codes"][SALES]
    assert boosts_of(targeted)["occupation_codes"][SALES] < vague_weight < 1.0
    assert after((SALESPERSON, "dismiss", None)) == after((SALESPERSON, "dismiss", "other"))


def test_a_region_with_a_save_or_of_the_pipeline_itself_is_not_lowered() -> None:
    far = CandidateFeatures(occupation_codes=(SOFTWARE,), country="US", region="TX")
    dismissed = after(*[(far, "dismiss", "location")] * 3)
    regions = boosts_of(dismissed)["regions"]
    assert list(regions) == ["US-TX"] and regions["US-TX"] < 1.0
    at_home = learned_boosts(dismissed, home_regions={"US", "US-TX"})
    assert at_home is not None and at_home.regions == {} and at_home.beyond_radius < 1.0
    saved_there = record(dismissed, features=far, signal="save")
    assert "US-TX" not in boosts_of(saved_there)["regions"]


def test_boosts_stay_within_bounds_however_many_signals() -> None:
    counts = EMPTY
    for _ in range(500):
        counts = record(counts, features=DEVELOPER, signal="save")
        for reason in ("title", "location", "skills", "seniority", "other"):
            counts = record(counts, features=SALESPERSON, signal="dismiss", reason=reason)  # type: ignore[arg-type]
    boosts = boosts_of(counts)
    assert boosts.pop("beyond_radius") == MIN_BOOST
    weights = [weight for kind in boosts.values() for weight in kind.values()]
    assert weights and all(MIN_BOOST <= weight <= MAX_BOOST for weight in weights)
    assert boosts["occupation_codes"] == {SOFTWARE: MAX_BOOST, SALES: MIN_BOOST}


def test_one_signal_does_not_swing_a_weight_to_the_bound() -> None:
    saved = boosts_of(after((DEVELOPER, "save", None)))
    dismissed = boosts_of(after((SALESPERSON, "dismiss", "title")))
    for weights in (*saved.values(), *dismissed.values()):
        for weight in weights.values():
            assert MIN_BOOST + 0.1 < weight < MAX_BOOST - 0.5


def test_a_candidate_with_several_occupations_spreads_one_signal_over_them() -> None:
    ambiguous = CandidateFeatures(occupation_codes=(SOFTWARE, SALES))
    once = after((ambiguous, "dismiss", "title"))
    assert once.occupation_codes[SOFTWARE] == KeyCounts(positives=0.0, negatives=0.5, negative_signals=1)
    assert learned_boosts(once) is None  # half a signal on each is less than a key needs
    twice = after((ambiguous, "dismiss", "title"), (ambiguous, "dismiss", "title"))
    single = boosts_of(after(*[(SALESPERSON, "dismiss", "title")] * 2))["occupation_codes"][SALES]
    assert single < boosts_of(twice)["occupation_codes"][SALES] < 1.0


def test_a_reason_goes_with_a_dismissal_only() -> None:
    with pytest.raises(ValueError, match="reason"):
        record(EMPTY, features=DEVELOPER, signal="save", reason="title")
    with pytest.raises(ValueError, match="signal"):
        record(EMPTY, features=DEVELOPER, signal="like")  # type: ignore[arg-type]


def test_counts_round_trip_through_json() -> None:
    counts = after(
        (DEVELOPER, "save", None),
        (DEVELOPER, "export", None),
        (CandidateFeatures(occupation_codes=(SOFTWARE, SALES, "15-1253.00")), "save", None),
        (SALESPERSON, "dismiss", "other"),
        (SALESPERSON, "dismiss", "location"),
    )
    stored = json.loads(json.dumps(counts.to_dict()))
    assert FeedbackCounts.from_dict(stored) == counts
    assert stored["skills"]["python"] == [2, 0]  # whole signals are stored as two numbers
    with pytest.raises(ValueError):
        FeedbackCounts.from_dict({"v": 1, "skills": {"python": "many"}})
    first_form = FeedbackCounts.from_dict({"v": 1, "skills": {"python": [1, 0, 4]}})  # [p, n, vague dismissals]
    assert first_form.skills["python"] == KeyCounts(positives=1.0, negatives=1.0, positive_signals=1,
                                                    negative_signals=4)
    with pytest.raises(ValueError):
        FeedbackCounts.from_dict({"v": 99})


def test_stored_counts_keep_the_strongest_keys_only() -> None:
    counts = after(*[(DEVELOPER, "save", None)] * 2)
    for number in range(200):
        counts = record(counts, features=CandidateFeatures(skills=(f"skill {number}",)), signal="save")
    assert len(counts.skills) == 80
    assert {"python", "kubernetes", "postgresql", "skill 199"} <= set(counts.skills)  # strongest, then newest
    assert "skill 0" not in counts.skills


def test_inputs_are_not_mutated() -> None:
    counts = after((DEVELOPER, "save", None), (SALESPERSON, "dismiss", "other"))
    snapshot = copy.deepcopy(counts)
    source = {"occupation_codes": [SOFTWARE], "skills": ["python"], "location": {"country": "US"}}
    source_snapshot = copy.deepcopy(source)
    features = features_of(source)
    record(counts, features=features, signal="save")
    record(counts, features=SALESPERSON, signal="dismiss", reason="title")
    learned_boosts(counts, prior=counts, home_regions=["US"])
    merged([counts, counts])
    describe(counts)
    assert counts == snapshot
    assert source == source_snapshot


def test_describe_says_what_was_learned_in_recruiter_words_strongest_first() -> None:
    counts = after(*[(DEVELOPER, "save", None)] * 4, *[(SALESPERSON, "dismiss", "title")] * 2)
    titles = {SOFTWARE: "Software Developers", SALES: "Sales Representatives"}
    items = describe(counts, label_of=lambda kind, key: titles.get(key, key))
    texts = [item.text for item in items]
    assert texts[0] == "more like: Software Developers titles (4 saves)"
    assert "less like: Sales Representatives titles (2 dismissals)" in texts
    assert "more like: kubernetes (4 saves)" in texts
    strengths = [abs(math.log(item.weight)) for item in items]
    assert strengths == sorted(strengths, reverse=True)
    assert {item.direction for item in items} == {"more", "less"}


def test_describe_names_the_positive_signals_the_recruiter_used() -> None:
    counts = after((DEVELOPER, "inmail", None), (DEVELOPER, "inmail", None))
    assert describe(counts)[0].text == f"more like: {SOFTWARE} titles (2 InMails)"
    counts = record(counts, features=DEVELOPER, signal="save")
    assert describe(counts)[0].text == f"more like: {SOFTWARE} titles (3 saves or InMails)"


def test_tenant_prior_weighs_at_most_a_couple_of_signals() -> None:
    tenant = merged([after(*[(DEVELOPER, "save", None)] * 50)] * 4)
    assert tenant.signals == {"save": 200}
    borrowed = boosts_of(EMPTY, prior=tenant)["occupation_codes"][SOFTWARE]
    own = boosts_of(after(*[(DEVELOPER, "save", None)] * 2))["occupation_codes"][SOFTWARE]
    assert 1.0 < borrowed <= own
    assert describe(EMPTY) == []  # the recruiter did nothing here, so nothing is said


def test_learned_boosts_feed_the_query_builder() -> None:
    taxonomy = Taxonomy.load()
    understanding = understand(
        pipeline=PipelineIn(title="Software Engineer", locations=["Austin, TX"], skills=["Python"]),
        taxonomy=taxonomy,
    )
    assert home_regions(understanding) >= {"US"}
    counts = after(*[(DEVELOPER, "save", None)] * 3, (SALESPERSON, "dismiss", "location"),
                   (SALESPERSON, "dismiss", "location"))
    boosts = learned_boosts(counts, home_regions=home_regions(understanding))
    body = build_query(understanding=understanding, boosts=boosts, exclude_ids=["c-1"])
    functions = body["query"]["function_score"]["functions"]
    assert functions and all(MIN_BOOST <= function["weight"] <= MAX_BOOST for function in functions)
    assert {"filter": {"term": {"occupation_codes": SOFTWARE}},
            "weight": boosts.occupation_codes[SOFTWARE]} in functions  # type: ignore[union-attr]


def test_dismissal_for_title_lowers_that_exact_title_unless_someone_with_it_was_saved() -> None:
    agent = features_of({"title": "Insurance  Sales Agents", "occupation_codes": [SALES]})
    assert agent.title_norm == "insurance sales agent"  # normalised as title_norm is indexed
    once = boosts_of(after((agent, "dismiss", "title")))
    twice = boosts_of(after((agent, "dismiss", "title"), (agent, "dismiss", "title")))
    assert MIN_BOOST <= twice["titles"]["insurance sales agent"] < once["titles"]["insurance sales agent"] < 1.0
    assert not boosts_of(after((agent, "dismiss", "location"), (agent, "dismiss", "location")))["titles"]
    saved_one = after((agent, "save", None), (agent, "dismiss", "title"), (agent, "dismiss", "title"))
    assert "insurance sales agent" not in boosts_of(saved_one)["titles"]  # never raised, and a save protects it


def test_dismissal_for_title_blames_the_readings_no_saved_candidate_had() -> None:
    ambiguous = CandidateFeatures(occupation_codes=(SOFTWARE, SALES))
    counts = after((DEVELOPER, "save", None), (ambiguous, "dismiss", "title"))
    assert counts.occupation_codes[SALES] == KeyCounts(negatives=1.0, negative_signals=1)
    assert counts.occupation_codes[SOFTWARE] == KeyCounts(positives=1.0, positive_signals=1)
    unknown = after((ambiguous, "dismiss", "title"))  # nothing saved yet: spread over every reading
    assert unknown.occupation_codes[SALES].negatives == unknown.occupation_codes[SOFTWARE].negatives == 0.5


def test_each_location_dismissal_lowers_candidates_beyond_the_radius_down_to_the_bound() -> None:
    far = [after(*[(SALESPERSON, "dismiss", "location")] * n) for n in range(1, 6)]
    weights = [learned_boosts(counts).beyond_radius for counts in far]  # type: ignore[union-attr]
    assert weights == sorted(weights, reverse=True) and weights[0] < 1.0 and weights[-1] == MIN_BOOST
    assert weights[0] > 0.7  # one dismissal does not swing it to the bound
    assert learned_boosts(after((SALESPERSON, "dismiss", "title"))).beyond_radius == 1.0  # type: ignore[union-attr]
    assert merged(far[:2]).reasons == {"location": 3}
    stored = json.loads(json.dumps(far[1].to_dict()))
    assert stored["reasons"] == {"location": 2} and FeedbackCounts.from_dict(stored) == far[1]
    text = [item.text for item in describe(far[1], home_regions={"GB"})]
    assert text == ["less like: people outside the search radius (2 location dismissals)"]


def test_beyond_radius_multiplies_candidates_outside_every_place_and_not_remote() -> None:
    taxonomy = Taxonomy.load()
    boosts = learned_boosts(after(*[(SALESPERSON, "dismiss", "location")] * 2), home_regions={"GB"})
    assert boosts is not None and boosts.regions == {} and boosts.beyond_radius < 1.0
    pipeline = PipelineIn(title="Software Engineer", locations=["Austin, TX"], radius_km=50, remote_ok=True)
    understanding = understand(pipeline=pipeline, taxonomy=taxonomy)
    place = understanding.locations[0]
    functions = build_query(understanding=understanding, boosts=boosts)["query"]["function_score"]["functions"]
    assert functions == [{
        "filter": {"bool": {"must_not": [
            {"geo_distance": {"distance": "50km", "location.geo": {"lat": place.lat, "lon": place.lon}}},
            {"term": {"open_to_remote": True}},
        ]}},
        "weight": boosts.beyond_radius,
    }]
    nowhere = understand(pipeline=PipelineIn(title="Software Engineer"), taxonomy=taxonomy)
    assert build_query(understanding=nowhere, boosts=boosts)["query"]["function_score"]["functions"] == []


def test_learned_titles_become_functions_on_the_normalised_title() -> None:
    taxonomy = Taxonomy.load()
    understanding = understand(pipeline=PipelineIn(title="Software Engineer"), taxonomy=taxonomy)
    agent = features_of({"title": "Insurance Sales Agents"})
    boosts = learned_boosts(after((agent, "dismiss", "title")))
    functions = build_query(understanding=understanding, boosts=boosts)["query"]["function_score"]["functions"]
    assert functions == [{"filter": {"term": {"title_norm.keyword": "insurance sales agent"}},
                          "weight": boosts.titles["insurance sales agent"]}]  # type: ignore[union-attr]
