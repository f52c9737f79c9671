"""Normalisation shared by indexing and querying."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recmatch.text.normalize import display_skill, fold, normalize_skill, normalize_title, singular

ALTERNATE_TITLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "onet" / "Alternate Titles.txt"


def test_fold_strips_accents_and_case() -> None:
    assert fold("Crème Brûlée  CHEF") == "creme brulee chef"
    assert fold("Søren Müller-Straße") == "soren muller strasse"


def test_fold_repairs_mojibake() -> None:
    assert fold("Donâ€™t Stop") == "dont stop"
    assert fold("Caf\u00c3\u00a9 Manager") == "cafe manager"


def test_fold_turns_punctuation_into_spaces() -> None:
    assert fold("Engineer, Software (Backend) / Platform!") == "engineer software backend platform"


def test_fold_keeps_programming_punctuation() -> None:
    assert fold("C++, C#, F# and .NET") == "c++ c# f# and .net"
    assert fold("ASP.NET / Node.js") == "asp.net node.js"
    assert fold("CI/CD, TCP/IP, UI/UX") == "ci/cd tcp/ip ui/ux"


def test_fold_joins_short_ampersand_terms_and_spells_out_the_rest() -> None:
    assert fold("R & D Manager") == fold("R&D Manager") == "r&d manager"
    assert fold("Health & Safety") == "health and safety"


def test_fold_collapses_dotted_acronyms() -> None:
    assert fold("U.S. Senator") == "us senator"
    assert fold("V.P. Sales") == "vp sales"


def test_fold_keeps_other_scripts() -> None:
    assert fold("Инженер-программист") == "инженер программист"


def test_plural_folding_of_regular_plurals() -> None:
    words = ["engineers", "analysts", "nurses", "technologies", "boxes", "classes", "businesses", "processes"]
    assert [singular(word) for word in words] == [
        "engineer", "analyst", "nurse", "technology", "box", "class", "business", "process",
    ]


@pytest.mark.parametrize(
    "word",
    ["analysis", "sales", "business", "kubernetes", "aws", "os", "us", "ios", "series", "news", "physics",
     "economics", "status", "logistics", "devops", "jenkins", "angularjs", "dbms"],
)
def test_plural_folding_keeps_non_plurals(word: str) -> None:
    assert singular(word) == word


def test_plural_folding_keeps_sales() -> None:
    assert normalize_title("Sales Associates") == "sales associate"


def test_plural_folding_of_irregulars() -> None:
    assert singular("analyses") == "analysis"
    assert singular("mechanics") == "mechanic"
    assert singular("womens") == "woman"


def test_abbreviations_expand() -> None:
    assert normalize_title("Sr. Software Eng") == "senior software engineer"
    assert normalize_title("Jr Dev") == "junior developer"
    assert normalize_title("IT Mgr") == "information technology manager"
    assert normalize_title("VP, Ops") == "vice president operation"
    assert normalize_title("QA Engr") == "quality assurance engineer"
    assert normalize_title("RN") == "registered nurse"
    assert normalize_title("SWE") == "software engineer"
    assert normalize_title("Asst. Dir. of HR") == "assistant director of human resource"


def test_abbreviations_read_their_context() -> None:
    assert normalize_title("Admin Assistant") == "administrative assistant"
    assert normalize_title("Systems Admin") == "system administrator"
    assert normalize_title("Tech Lead") == "technical lead"
    assert normalize_title("Pharmacy Tech") == "pharmacy technician"
    assert normalize_title("Business Dev Manager") == "business development manager"
    assert normalize_title("Dev Ops Engineer") == normalize_title("DevOps Engineer") == "devops engineer"


def test_pm_stays_ambiguous() -> None:
    assert normalize_title("PM") == "pm"


def test_level_suffixes_drop() -> None:
    assert normalize_title("Software Engineer II") == "software engineer"
    assert normalize_title("Accountant III") == "accountant"
    assert normalize_title("Support Engineer, Level 2") == "support engineer"
    assert normalize_title("Title IX Coordinator") == "title ix coordinator"


def test_compound_spellings_meet() -> None:
    assert normalize_title("Backend Developer") == normalize_title("Back-End Developer") == "back end developer"
    assert normalize_title("Full-Stack Developers") == "full stack developer"


def test_level_only_title_is_not_emptied() -> None:
    assert normalize_title("Level 2") == "level 2"
    assert normalize_title("II") == "ii"


@pytest.mark.parametrize(
    "title",
    ["Sr. Software Engineers II", "Registered Nurses", "Admin Asst", "VP of Sales & Marketing", "C++ Devs",
     "Men's Clothing Sales Associates", "Level 2", "Tech", "R & D Engr", "ops mgr"],
)
def test_idempotent(title: str) -> None:
    once = normalize_title(title)
    assert normalize_title(once) == once


def test_empty_and_punctuation_only_titles_normalise_to_empty() -> None:
    assert normalize_title("") == ""
    assert normalize_title(" !!! ") == ""




def test_skills_keep_language_punctuation() -> None:
    assert [normalize_skill(skill) for skill in ["C++", "C#", ".NET", "Node.js"]] == ["c++", "c#", ".net", "node.js"]


def test_skills_drop_trailing_software() -> None:
    assert normalize_skill("SAP software") == "sap"
    assert normalize_skill("Microsoft Excel") == "microsoft excel"
    assert normalize_skill("Software") == "software"


def test_skill_aliases_collapse() -> None:
    pairs = [("JS", "JavaScript"), ("Postgres", "PostgreSQL"), ("k8s", "Kubernetes"), ("Golang", "Go"),
             ("MS Excel", "Microsoft Excel"), ("Microsoft .NET Framework", ".NET")]
    for alias, canonical in pairs:
        assert normalize_skill(alias) == normalize_skill(canonical)


def test_spelled_out_acronyms_collapse() -> None:
    assert normalize_skill("Structured query language SQL") == normalize_skill("SQL") == "sql"
    assert normalize_skill("Amazon Web Services AWS software") == "aws"
    assert display_skill("Hypertext markup language HTML") == "HTML"
    assert display_skill("Amazon Elastic Compute Cloud EC2") == "Amazon Elastic Compute Cloud EC2"


def test_every_onet_alternate_title_normalises_idempotently() -> None:
    if not ALTERNATE_TITLES.is_file():
        pytest.skip(f"reference data absent: {ALTERNATE_TITLES}")
    with ALTERNATE_TITLES.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) > 50_000
    for row in rows:
        for title in (row["Alternate Title"], row["Short Title"]):
            normalised = normalize_title(title)
            assert normalize_title(normalised) == normalised, title
            if any(char.isalpha() for char in title):
                assert normalised, title
