"""What recmatch understands of a pipeline: occupations, related ones, skills, places, remote."""

from __future__ import annotations

import json

import pytest

from recmatch.core.models import PipelineIn
from recmatch.ranking.understand import TIER_WEIGHTS, Understanding, understand
from recmatch.text.taxonomy import Taxonomy

SOFTWARE = "15-1252.00"
WEB = "15-1254.00"
QA = "15-1253.00"

TAXONOMY = Taxonomy.from_dict({
    "source": "test",
    "credit": "",
    "occupations": {
        SOFTWARE: {
            "title": "Software Developers",
            "alt_titles": ["Software Engineer", "Backend Engineer", "Developer"],
            "skills": [["Python", 4.0], ["Kubernetes", 3.0], ["PostgreSQL", 2.0], ["Microsoft Excel", 1.0]],
            "related": [[WEB, 1], [QA, 3]],
        },
        WEB: {
            "title": "Web Developers",
            "alt_titles": ["Web Developer", "Frontend Engineer", "Developer"],
            "skills": [["JavaScript", 4.0], ["React", 3.0], ["Microsoft Excel", 1.0]],
            "related": [[SOFTWARE, 1]],
        },
        QA: {
            "title": "Software Quality Assurance Analysts and Testers",
            "alt_titles": ["QA Engineer"],
            "skills": [["Selenium", 3.0], ["Python", 2.0]],
            "related": [[SOFTWARE, 2]],
        },
    },
})


def _understand(**fields) -> Understanding:
    return understand(pipeline=PipelineIn(**fields), taxonomy=TAXONOMY)


def test_exact_title_maps_to_its_occupation_with_full_confidence():
    understanding = _understand(title="Backend Engineer")
    assert [(o.code, o.title, o.confidence) for o in understanding.occupations] == [
        (SOFTWARE, "Software Developers", 1.0)
    ]
    assert understanding.title == "Backend Engineer"
    assert understanding.title_norm == "back end engineer"


def test_related_weight_is_tier_weight_times_confidence():
    understanding = _understand(title="Senior Backend Engineer")  # 0.95: seniority stripped
    confidence = understanding.occupations[0].confidence
    related = {r.code: (r.tier, r.weight) for r in understanding.related}
    assert related == {
        WEB: (1, round(TIER_WEIGHTS[1] * confidence, 4)),
        QA: (3, round(TIER_WEIGHTS[3] * confidence, 4)),
    }
    assert [r.code for r in understanding.related] == [WEB, QA]  # heaviest first
    assert understanding.related[0].title == "Web Developers"


def test_related_never_repeats_a_matched_occupation():
    understanding = _understand(title="Developer")  # maps to both Software and Web Developers
    matched = {o.code for o in understanding.occupations}
    assert matched == {SOFTWARE, WEB}
    assert matched.isdisjoint(r.code for r in understanding.related)


def test_without_skills_an_ambiguous_title_keeps_the_taxonomy_confidences():
    understanding = _understand(title="Developer")
    expected = {m.code: m.confidence for m in TAXONOMY.match_title("Developer")}
    assert {o.code: o.confidence for o in understanding.occupations} == expected


@pytest.mark.parametrize(("skills", "first"), [(["Python", "Kubernetes"], SOFTWARE), (["JavaScript", "React"], WEB)])
def test_skills_pick_the_reading_of_an_ambiguous_title(skills, first):
    understanding = _understand(title="Developer", skills=skills)
    assert understanding.occupations[0].code == first
    assert understanding.occupations[0].confidence > understanding.occupations[1].confidence


def test_skills_are_normalised_and_deduplicated_with_display_names():
    understanding = _understand(title="Developer", skills=["Python", "python ", "k8s", "Structured query language SQL"])
    assert [(s.name, s.display) for s in understanding.skills] == [
        ("python", "Python"),
        ("kubernetes", "k8s"),
        ("sql", "SQL"),
    ]


def test_city_keeps_the_pipeline_radius():
    understanding = _understand(title="Developer", locations=["Austin, TX"], radius_km=30)
    (austin,) = understanding.locations
    assert (austin.text, austin.name, austin.country, austin.region, austin.kind) == (
        "Austin, TX", "Austin", "US", "TX", "city"
    )
    assert austin.radius_km == 30
    assert understanding.radius_km == 30
    assert abs(austin.lat - 30.27) < 0.1 and abs(austin.lon + 97.74) < 0.1


def test_metros_and_regions_widen_the_radius_to_their_size():
    understanding = _understand(title="Developer", locations=["San Francisco Bay Area", "Texas"], radius_km=10)
    bay_area, texas = understanding.locations
    assert (bay_area.kind, bay_area.radius_km) == ("metro", 80)
    assert texas.kind == "region" and texas.radius_km >= 250


def test_a_radius_wider_than_the_place_wins():
    understanding = _understand(title="Developer", locations=["San Francisco Bay Area"], radius_km=200)
    assert understanding.locations[0].radius_km == 200


def test_remote_text_means_remote_and_is_not_a_place():
    understanding = _understand(title="Developer", locations=["Remote", "Austin, TX"])
    assert understanding.remote is True
    assert [place.name for place in understanding.locations] == ["Austin"]
    assert understanding.unresolved_locations == ()


def test_remote_ok_means_remote_without_any_location():
    assert _understand(title="Developer", remote_ok=True).remote is True
    assert _understand(title="Developer").remote is False


def test_unresolvable_location_is_reported_not_dropped():
    understanding = _understand(title="Developer", locations=["Atlantis of the Deep", "Austin, TX"])
    assert understanding.unresolved_locations == ("Atlantis of the Deep",)
    assert [place.name for place in understanding.locations] == ["Austin"]


def test_the_same_place_twice_is_one_location():
    understanding = _understand(title="Developer", locations=["Austin, TX", "Austin, Texas"])
    assert len(understanding.locations) == 1


def test_unseen_title_is_understood_without_occupations():
    understanding = _understand(title="Zzyzx Wrangler")
    assert understanding.occupations == () and understanding.related == ()
    assert understanding.title_norm == "zzyzx wrangler"


@pytest.mark.parametrize(
    "fields",
    [
        {"title": "!!!"},
        {"title": "x" * 200, "skills": [f"skill {n}" for n in range(50)]},
        {"title": "Ingénieur logiciel ☃", "locations": ["??", "Remote - EU", "São Paulo, Brasil", "x" * 200]},
        {"title": 'a) OR b:* AND {"x": 1}', "skills": ["*:*", "\\"], "locations": ["\");"], "radius_km": 500},
        {"title": "Developer", "locations": [f"City {n}" for n in range(10)], "radius_km": 1},
    ],
)
def test_any_valid_pipeline_is_understood(fields):
    understanding = _understand(**fields)
    assert understanding.title == PipelineIn(**fields).title
    assert Understanding.from_dict(understanding.to_dict()) == understanding


def test_round_trips_through_a_json_dict():
    understanding = _understand(
        title="Developer", skills=["Python", "React"], locations=["Austin, TX", "Texas", "Remote", "Atlantis"],
        radius_km=40,
    )
    stored = json.loads(json.dumps(understanding.to_dict()))
    assert Understanding.from_dict(stored) == understanding


def test_from_dict_refuses_what_is_not_an_understanding():
    with pytest.raises(ValueError, match="not a stored pipeline understanding"):
        Understanding.from_dict({"title": "x"})
    stored = _understand(title="Developer", locations=["Austin, TX"]).to_dict()
    stored["locations"][0]["kind"] = "planet"
    with pytest.raises(ValueError):
        Understanding.from_dict(stored)


def test_the_title_is_kept_as_it_was_read_with_its_confidence_and_stated_level():
    from recmatch.text.taxonomy import get_taxonomy

    inverted = understand(pipeline=PipelineIn(title="Manager, Sales"), taxonomy=get_taxonomy())
    assert inverted.title_norm == "sales manager"
    assert inverted.occupations[0].code == "11-2022.00" and not inverted.weak_title
    senior = understand(pipeline=PipelineIn(title="Sr. Accountnat"), taxonomy=get_taxonomy())
    assert (senior.title_norm, senior.seniority) == ("senior accountant", "senior")
    assert senior.occupations[0].code == "13-2011.00"
    unknown = understand(pipeline=PipelineIn(title="Zorblax Wrangler"), taxonomy=get_taxonomy())
    assert unknown.weak_title and unknown.occupations


def test_a_stored_understanding_without_the_new_fields_reads_as_a_resolved_title():
    data = understand(pipeline=PipelineIn(title="Backend Engineer"), taxonomy=TAXONOMY).to_dict()
    del data["title_confidence"], data["seniority"]
    old = Understanding.from_dict(data)
    assert old.title_confidence == 1.0 and old.seniority is None and not old.weak_title
