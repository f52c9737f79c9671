"""The taxonomy: title matching, relations, the shipped file and the O*NET import."""

from __future__ import annotations

from pathlib import Path

import pytest

from recmatch.text.taxonomy import (
    OccupationMatch,
    Taxonomy,
    get_taxonomy,
    import_onet,
    is_holdout_title,
    shipped_taxonomy_path,
    write_taxonomy,
)

ONET_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "onet"
SOFTWARE_DEVELOPERS = "15-1252.00"
WEB_DEVELOPERS = "15-1254.00"
REGISTERED_NURSES = "29-1141.00"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


def _onet_dir() -> Path:
    if not (ONET_DIR / "Occupation Data.txt").is_file():
        pytest.skip(f"reference data absent: {ONET_DIR}")
    return ONET_DIR


def test_shipped_file_loads(taxonomy: Taxonomy) -> None:
    assert shipped_taxonomy_path().name.endswith(".json.xz")
    assert shipped_taxonomy_path().stat().st_size < 1_000_000
    assert len(taxonomy.codes()) == 1016  # every O*NET 29.3 occupation
    assert "O*NET" in taxonomy.credit and "CC BY 4.0" in taxonomy.credit
    occupation = taxonomy.occupation(SOFTWARE_DEVELOPERS)
    assert occupation.title == "Software Developers"
    assert occupation.job_zone == 4
    assert occupation.alt_titles and occupation.skills


def test_senior_software_engineer_is_a_software_developer(taxonomy: Taxonomy) -> None:
    matches = taxonomy.match_title("Sr. Software Engineer")
    assert matches[0].code == SOFTWARE_DEVELOPERS
    assert matches[0].confidence >= 0.5
    assert SOFTWARE_DEVELOPERS in taxonomy.occupation_codes("Sr. Software Engineer")


def test_backend_developer_is_a_software_or_web_developer(taxonomy: Taxonomy) -> None:
    assert {SOFTWARE_DEVELOPERS, WEB_DEVELOPERS} & set(taxonomy.occupation_codes("Backend Developer"))


def test_canonical_title_matches_exactly(taxonomy: Taxonomy) -> None:
    assert taxonomy.match_title("Registered Nurses") == [
        OccupationMatch(code=REGISTERED_NURSES, title="Registered Nurses", confidence=1.0)
    ]


def test_abbreviated_title_matches_exactly(taxonomy: Taxonomy) -> None:
    assert taxonomy.match_title("RN")[0].code == REGISTERED_NURSES


def test_token_overlap_scores_below_exact(taxonomy: Taxonomy) -> None:
    matches = taxonomy.match_title("Senior Java Engineer")
    assert matches[0].code == SOFTWARE_DEVELOPERS
    assert all(0 < match.confidence < 1 for match in matches)
    assert matches == sorted(matches, key=lambda match: -match.confidence)


def test_unseen_gibberish_matches_nothing(taxonomy: Taxonomy) -> None:
    assert taxonomy.match_title("qwzx blorfington") == []
    assert taxonomy.occupation_codes("qwzx blorfington") == []


@pytest.mark.parametrize("title", ["", "   ", "!!!", "\ud800", "\x00", "x" * 100_000, "II", "of the and"])
def test_match_title_never_raises(taxonomy: Taxonomy, title: str) -> None:
    assert isinstance(taxonomy.match_title(title), list)


def test_related_occupations_of_software_developers(taxonomy: Taxonomy) -> None:
    related = taxonomy.related(SOFTWARE_DEVELOPERS)
    assert related
    assert all(code in taxonomy.codes() and tier in (1, 2, 3) for code, tier in related)
    assert [tier for _, tier in related] == sorted(tier for _, tier in related)


def test_unknown_code_has_no_relations_and_no_skills(taxonomy: Taxonomy) -> None:
    assert taxonomy.related("00-0000.00") == []
    assert taxonomy.skills("00-0000.00") == []
    with pytest.raises(KeyError):
        taxonomy.occupation("00-0000.00")


def test_skills_are_heaviest_first(taxonomy: Taxonomy) -> None:
    weights = [weight for _, weight in taxonomy.skills(SOFTWARE_DEVELOPERS)]
    assert weights == sorted(weights, reverse=True)
    assert "Python" in [name for name, _ in taxonomy.skills(SOFTWARE_DEVELOPERS)]


def test_get_taxonomy_defaults_to_the_shipped_file() -> None:
    get_taxonomy.cache_clear()
    try:
        assert SOFTWARE_DEVELOPERS in get_taxonomy().codes()
    finally:
        get_taxonomy.cache_clear()


def test_holdout_rule_is_stable_and_ignores_spelling() -> None:
    assert is_holdout_title("Sr. Software Engineer", 7) == is_holdout_title("senior software engineers", 7)
    assert not is_holdout_title("Software Engineer", 0)
    assert is_holdout_title("Software Engineer", 1)
    assert 0.1 < sum(is_holdout_title(f"Title {number}") for number in range(1000)) / 1000 < 0.3


def test_import_onet_for_two_codes(tmp_path: Path) -> None:
    data = import_onet(_onet_dir(), codes=[SOFTWARE_DEVELOPERS, WEB_DEVELOPERS])
    assert set(data) == {"source", "credit", "occupations"}
    assert "USDOL/ETA" in data["credit"]
    assert set(data["occupations"]) == {SOFTWARE_DEVELOPERS, WEB_DEVELOPERS}
    software = data["occupations"][SOFTWARE_DEVELOPERS]
    assert set(software) == {"title", "job_zone", "alt_titles", "skills", "related"}
    assert software["title"] == "Software Developers"
    assert "Software Engineer" in software["alt_titles"]
    assert all(isinstance(name, str) and 1.0 <= weight <= 4.0 for name, weight in software["skills"])
    assert software["related"] and {code for code, _ in software["related"]} == {WEB_DEVELOPERS}

    path = tmp_path / "taxonomy.json"
    write_taxonomy(data, path)
    assert Taxonomy.load(path).occupation_codes("Web Developer") == [WEB_DEVELOPERS]


def test_import_onet_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError, match="99-9999.99"):
        import_onet(_onet_dir(), codes=["99-9999.99"])


# -- hard titles, read with the shipped taxonomy ---------------------------------------------------------------------


@pytest.mark.parametrize(("title", "code", "key"), [
    ("schoo lcook", "35-2012.00", "school cook"),  # a space moved
    ("schoolcook", "35-2012.00", "school cook"),  # a space dropped
    ("conservatioinst", "19-1031.00", "conservationist"),  # letters transposed
    ("Registered Nrse", REGISTERED_NURSES, "registered nurse"),  # a letter dropped
    ("accountnat", "13-2011.00", "accountant"),
    ("Manager, Sales", "11-2022.00", "sales manager"),  # inverted
    ("Nurse, Registered", REGISTERED_NURSES, "registered nurse"),
    ("SR. SOFTWARE ENGINEER", SOFTWARE_DEVELOPERS, "senior software engineer"),  # case and abbreviation
    ("sr software engr", SOFTWARE_DEVELOPERS, "senior software engineer"),
    ("RN", REGISTERED_NURSES, "registered nurse"),
    ("Welder", "51-4121.00", "welder"),
])
def test_hard_titles_read_as_their_occupation(taxonomy: Taxonomy, title: str, code: str, key: str) -> None:
    reading = taxonomy.read_title(title)
    assert reading.key == key
    assert reading.matches[0].code == code
    assert reading.confidence >= 0.6


@pytest.mark.parametrize("title", ["Hydrographer", "Banquet Cook", "Neuropathologist", "Pizza Cook", "Hydrogrpaher"])
def test_titles_once_left_with_an_empty_list_now_have_an_occupation(taxonomy: Taxonomy, title: str) -> None:
    assert taxonomy.read_title(title).confidence >= 0.6


def test_a_title_in_no_taxonomy_resolves_weakly_to_weighted_occupations(taxonomy: Taxonomy) -> None:
    reading = taxonomy.read_title("Zorblax Wrangler")
    assert reading.matches and 0 < reading.confidence < 0.6
    assert [m.confidence for m in reading.matches] == sorted((m.confidence for m in reading.matches), reverse=True)


def test_repairs_never_touch_short_words_or_known_ones(taxonomy: Taxonomy) -> None:
    assert taxonomy.read_title("QA Lead").key == "quality assurance lead"
    assert taxonomy.read_title("Nurse").key == "nurse"


def test_stored_title_keys_are_what_normalize_title_makes_today() -> None:
    """If this fails, normalisation changed: rebuild the shipped file with scripts/build_taxonomy.py."""
    import lzma

    import orjson

    from recmatch.text.normalize import normalize_title

    data = orjson.loads(lzma.decompress(shipped_taxonomy_path().read_bytes()))
    stale = [(title, key) for entry in data["occupations"].values()
             for title, key in zip((entry["title"], *entry["alt_titles"]), entry["title_keys"], strict=True)
             if normalize_title(title) != key]
    assert stale == []
