"""A validated candidate becomes the Elasticsearch document the ranking reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recmatch import geo
from recmatch.models import CandidateIn, Seniority
from recmatch.normalize import normalize_skill, normalize_title
from recmatch.taxonomy import Taxonomy

# Title words that say the level outright, strongest first.
_LEVEL_WORDS: tuple[tuple[Seniority, frozenset[str]], ...] = (
    ("executive", frozenset({"chief", "ceo", "cto", "cfo", "coo", "president", "vice"})),
    ("director", frozenset({"director", "head"})),
    ("manager", frozenset({"manager"})),
    ("lead", frozenset({"lead", "principal", "staff", "architect"})),
    ("senior", frozenset({"senior"})),
    ("junior", frozenset({"junior", "associate"})),
    ("entry", frozenset({"intern", "trainee", "apprentice", "graduate", "entry"})),
)


def infer_seniority(*, title_norm: str, years_experience: float | None) -> Seniority | None:
    """The level a title states, else the one its years of experience suggest."""
    words = set(title_norm.split())
    for level, markers in _LEVEL_WORDS:
        if words & markers:
            return level
    if years_experience is None:
        return None
    if years_experience < 1:
        return "entry"
    if years_experience < 3:
        return "junior"
    if years_experience < 7:
        return "mid"
    return "senior"


def candidate_document(
    candidate: CandidateIn, *, taxonomy: Taxonomy, indexed_at: datetime, live: bool = False
) -> dict[str, Any]:
    """The indexed form of a candidate: normalised fields, occupation codes, coordinates."""
    title_norm = normalize_title(candidate.title)
    past_norm = [normalize_title(title) for title in candidate.past_titles]
    skills = list(dict.fromkeys(s for s in (normalize_skill(skill) for skill in candidate.skills) if s))
    document: dict[str, Any] = {
        "candidate_id": candidate.candidate_id,
        "name": candidate.name,
        "title": candidate.title,
        "title_norm": title_norm,
        "occupation_codes": taxonomy.occupation_codes(candidate.title),
        "past_titles": candidate.past_titles,
        "past_titles_norm": past_norm,
        "past_occupation_codes": sorted({code for t in candidate.past_titles for code in taxonomy.occupation_codes(t)}),
        "skills": skills,
        "skills_text": " ".join(candidate.skills),
        "open_to_work": candidate.open_to_work,
        "open_to_remote": candidate.open_to_remote,
        "allow_export": candidate.allow_export,
        "seniority": candidate.seniority
        or infer_seniority(title_norm=title_norm, years_experience=candidate.years_experience),
        "indexed_at": indexed_at.isoformat(),
    }
    optional = {
        "headline": candidate.headline,
        "company": candidate.company,
        "years_experience": candidate.years_experience,
        "profile_url": str(candidate.profile_url) if candidate.profile_url else None,
        "updated_at": candidate.updated_at.isoformat() if candidate.updated_at else None,
        "live_updated_at": indexed_at.isoformat() if live else None,
        "location": _location(candidate),
    }
    document.update({key: value for key, value in optional.items() if value is not None})
    return document


def _location(candidate: CandidateIn) -> dict[str, Any] | None:
    location = candidate.location
    if location is None:
        return None
    result: dict[str, Any] = {"name": location.name, "country": location.country, "region": location.region}
    if location.lat is not None and location.lon is not None:
        result["geo"] = {"lat": location.lat, "lon": location.lon}
    elif location.name:
        place = geo.resolve(location.name)
        if place is not None:
            result["geo"] = {"lat": place.lat, "lon": place.lon}
            result["country"] = result["country"] or place.country
            result["region"] = result["region"] or place.region
    if result["country"]:
        result["country"] = result["country"].upper()
    return {key: value for key, value in result.items() if value is not None}
