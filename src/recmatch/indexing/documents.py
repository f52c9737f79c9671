"""A validated candidate becomes the Elasticsearch document the ranking reads."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from recmatch.core.models import CandidateIn, CandidateLocation, Seniority
from recmatch.text import geo
from recmatch.text.normalize import normalize_skill, normalize_title, stated_seniority
from recmatch.text.taxonomy import Taxonomy


def infer_seniority(*, title_norm: str, years_experience: float | None) -> Seniority | None:
    """The level a title states, else the one its years of experience suggest."""
    return stated_seniority(title_norm) or _level_from_years(years_experience)


def _level_from_years(years_experience: float | None) -> Seniority | None:
    if years_experience is None:
        return None
    if years_experience < 1:
        return "entry"
    if years_experience < 3:
        return "junior"
    if years_experience < 7:
        return "mid"
    return "senior"


class _Title(NamedTuple):
    norm: str
    occupation_codes: tuple[str, ...]
    level: Seniority | None


# A reindex meets the same few tens of thousands of titles a million times: work each one out once.
@lru_cache(maxsize=131_072)
def _title(taxonomy: Taxonomy, title: str) -> _Title:
    norm = normalize_title(title)
    return _Title(norm, tuple(taxonomy.occupation_codes(title)), stated_seniority(norm))


@lru_cache(maxsize=16)
def _timestamp(moment: datetime) -> str:
    # A reindex stamps every document with the same indexed_at.
    return moment.isoformat()


def _skills(skills: list[str]) -> list[str]:
    """Normalised skills in their order, without repeats or empties."""
    normalized = dict.fromkeys(map(normalize_skill, skills))
    normalized.pop("", None)
    return list(normalized)


def candidate_document(
    candidate: CandidateIn, *, taxonomy: Taxonomy, indexed_at: datetime, live: bool = False
) -> dict[str, Any]:
    """The indexed form of a candidate: normalised fields, occupation codes, coordinates."""
    title = _title(taxonomy, candidate.title)
    past = [_title(taxonomy, past_title) for past_title in candidate.past_titles]
    document: dict[str, Any] = {
        "candidate_id": candidate.candidate_id,
        "name": candidate.name,
        "title": candidate.title,
        "title_norm": title.norm,
        "occupation_codes": list(title.occupation_codes),
        "past_titles": candidate.past_titles,
        "past_titles_norm": [past_title.norm for past_title in past],
        "past_occupation_codes": sorted({code for past_title in past for code in past_title.occupation_codes}),
        "skills": _skills(candidate.skills),
        "skills_text": " ".join(candidate.skills),
        "open_to_work": candidate.open_to_work,
        "open_to_remote": candidate.open_to_remote,
        "allow_export": candidate.allow_export,
        "seniority": candidate.seniority or title.level or _level_from_years(candidate.years_experience),
        "indexed_at": _timestamp(indexed_at),
    }
    # Optional fields are left out rather than sent as null.
    if candidate.headline is not None:
        document["headline"] = candidate.headline
    if candidate.company is not None:
        document["company"] = candidate.company
    if candidate.years_experience is not None:
        document["years_experience"] = candidate.years_experience
    if candidate.profile_url:
        document["profile_url"] = str(candidate.profile_url)
    if candidate.updated_at:
        document["updated_at"] = candidate.updated_at.isoformat()
    if live:
        document["live_updated_at"] = document["indexed_at"]
    if candidate.location is not None:
        document["location"] = _location(candidate.location)
    return document


def _location(location: CandidateLocation) -> dict[str, Any]:
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
