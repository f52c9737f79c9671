"""A validated candidate becomes the indexed document: pure code, compared as dicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recmatch.core.models import CandidateIn
from recmatch.indexing.documents import candidate_document, infer_seniority
from recmatch.text.taxonomy import Taxonomy

INDEXED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SOFTWARE_DEVELOPERS = "15-1252.00"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


def _candidate(**fields: object) -> CandidateIn:
    return CandidateIn.model_validate({"candidate_id": "c-1", "name": "Ada Park", "title": "Sr. Software Engineer",
                                       **fields})


def test_document_holds_normalised_title_skills_and_codes(taxonomy):
    candidate = _candidate(past_titles=["Software Engineers", "Registered Nurse"],
                           skills=["Python", "python ", "K8s", "Kubernetes", "PostgreSQL"])
    document = candidate_document(candidate, taxonomy=taxonomy, indexed_at=INDEXED_AT)
    assert document == {
        "candidate_id": "c-1",
        "name": "Ada Park",
        "title": "Sr. Software Engineer",
        "title_norm": "senior software engineer",
        "occupation_codes": taxonomy.occupation_codes("Sr. Software Engineer"),
        "past_titles": ["Software Engineers", "Registered Nurse"],
        "past_titles_norm": ["software engineer", "registered nurse"],
        "past_occupation_codes": sorted({*taxonomy.occupation_codes("Software Engineers"),
                                         *taxonomy.occupation_codes("Registered Nurse")}),
        "skills": ["python", "kubernetes", "postgresql"],
        "skills_text": "Python python K8s Kubernetes PostgreSQL",
        "open_to_work": False,
        "open_to_remote": False,
        "allow_export": False,
        "seniority": "senior",
        "indexed_at": "2026-11-25T12:00:00+00:00",
    }
    assert SOFTWARE_DEVELOPERS in document["occupation_codes"]


def test_optional_fields_appear_only_when_given(taxonomy):
    candidate = _candidate(headline="", company="Acme", years_experience=0, profile_url="https://example.org/in/ada",
                           updated_at="2026-01-02T01:13:13Z")
    document = candidate_document(candidate, taxonomy=taxonomy, indexed_at=INDEXED_AT, live=True)
    assert {key: document[key] for key in
            ("headline", "company", "years_experience", "profile_url", "updated_at", "live_updated_at")} == {
        "headline": "",
        "company": "Acme",
        "years_experience": 0.0,
        "profile_url": "https://example.org/in/ada",
        "updated_at": "2026-01-02T01:13:13+00:00",
        "live_updated_at": "2026-11-25T12:00:00+00:00",
    }
    bare = candidate_document(_candidate(), taxonomy=taxonomy, indexed_at=INDEXED_AT)
    assert not {"headline", "company", "years_experience", "profile_url", "updated_at", "live_updated_at",
                "location"} & set(bare)


def test_location_with_coordinates_keeps_them(taxonomy):
    candidate = _candidate(location={"name": "Austin, TX, US", "lat": 30.2672, "lon": -97.7431, "country": "us"})
    document = candidate_document(candidate, taxonomy=taxonomy, indexed_at=INDEXED_AT)
    assert document["location"] == {"name": "Austin, TX, US", "country": "US",
                                    "geo": {"lat": 30.2672, "lon": -97.7431}}


def test_location_without_coordinates_is_geocoded_from_its_name(taxonomy):
    document = candidate_document(_candidate(location={"name": "Austin, TX"}), taxonomy=taxonomy,
                                  indexed_at=INDEXED_AT)
    location = document["location"]
    assert (location["name"], location["country"], location["region"]) == ("Austin, TX", "US", "TX")
    assert location["geo"]["lat"] == pytest.approx(30.27, abs=0.05)


def test_unknown_place_keeps_the_name_without_coordinates(taxonomy):
    document = candidate_document(_candidate(location={"name": "Narnia"}), taxonomy=taxonomy, indexed_at=INDEXED_AT)
    assert document["location"] == {"name": "Narnia"}


@pytest.mark.parametrize(
    ("title", "years", "stated", "expected"),
    [
        ("Chief Technology Officer", 2, None, "executive"),
        ("Engineering Manager", None, None, "manager"),
        ("Software Engineer", 0.5, None, "entry"),
        ("Software Engineer", 4, None, "mid"),
        ("Software Engineer", None, None, None),
        ("Senior Software Engineer", 1, "lead", "lead"),  # what the candidate says wins
    ],
)
def test_seniority_from_the_title_then_the_years(taxonomy, title, years, stated, expected):
    candidate = _candidate(title=title, years_experience=years, seniority=stated)
    assert candidate_document(candidate, taxonomy=taxonomy, indexed_at=INDEXED_AT)["seniority"] == expected


def test_infer_seniority_prefers_the_title():
    assert infer_seniority(title_norm="senior software engineer", years_experience=0) == "senior"
    assert infer_seniority(title_norm="software engineer", years_experience=12) == "senior"


def test_each_taxonomy_gets_its_own_occupation_codes(taxonomy):
    nurses_only = Taxonomy.from_dict({"occupations": {
        "29-1141.00": {"title": "Registered Nurses", "alt_titles": ["Software Engineer"]},
    }})
    candidate = _candidate(title="Software Engineer")
    shipped = candidate_document(candidate, taxonomy=taxonomy, indexed_at=INDEXED_AT)
    other = candidate_document(candidate, taxonomy=nurses_only, indexed_at=INDEXED_AT)
    assert SOFTWARE_DEVELOPERS in shipped["occupation_codes"]
    assert other["occupation_codes"] == ["29-1141.00"]
