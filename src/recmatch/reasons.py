"""PURE: why a candidate is on a list, in plain words, from a hit's ``matched_queries`` and ``_source``.

The clause names are those ``recmatch.query`` writes (its module docstring has the grammar).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recmatch.geo import haversine_km
from recmatch.understand import PipelineLocation, Understanding

__all__ = ["HitExplanation", "describe_hit", "matched_names"]


@dataclass(frozen=True, slots=True)
class HitExplanation:
    """What a recruiter reads next to a candidate."""

    reasons: tuple[str, ...]  # "title: Backend Engineer ~ Software Developers", "skills: Python", "27 km from Austin"
    matched_skills: tuple[str, ...]  # display names, in the pipeline's order
    distance_km: float | None  # to the centre of the nearest pipeline location; None without coordinates or places
    nearest_location: str | None  # that location's name (nearest: the one the candidate is least outside of)


def matched_names(hit: Mapping[str, Any]) -> frozenset[str]:
    """The clause names a hit matched (a list, or a name → score dict with include_named_queries_score)."""
    matched = hit.get("matched_queries") or ()
    return frozenset(str(name) for name in matched)


def describe_hit(*, understanding: Understanding, hit: Mapping[str, Any]) -> HitExplanation:
    """Reasons, matched skills and distance for one search hit."""
    names = matched_names(hit)
    source = hit.get("_source") or {}
    reasons: list[str] = []
    title_reason = _title_reason(understanding, names, str(source.get("title") or ""))
    if title_reason:
        reasons.append(title_reason)
    skills = tuple(skill.display for skill in understanding.skills if f"skill:{skill.name}" in names)
    if skills:
        reasons.append("skills: " + ", ".join(skills))
    distance, nearest = _nearest(understanding.locations, _point(source))
    if distance is not None and nearest is not None:
        inside_area = nearest.kind != "city" and distance <= nearest.radius_km
        reasons.append(f"in {nearest.name}" if inside_area else f"{_distance_words(distance)} from {nearest.name}")
    else:
        for index, place in enumerate(understanding.locations):
            if f"location:{index}" in names:
                reasons.append(f"in {place.name}")
                break
    if "remote" in names or (understanding.remote and source.get("open_to_remote") is True):
        reasons.append("open to remote")
    return HitExplanation(
        reasons=tuple(reasons),
        matched_skills=skills,
        distance_km=None if distance is None else round(distance, 1),
        nearest_location=None if nearest is None else nearest.name,
    )


def _title_reason(understanding: Understanding, names: frozenset[str], title: str) -> str | None:
    same = [o for o in understanding.occupations if f"title.occupation:{o.code}" in names]
    if same:
        best = max(same, key=lambda occupation: occupation.confidence)
        return f"title: {title} ~ {best.title}" if title else f"title ~ {best.title}"
    if "title.exact" in names or "title.words" in names:
        return f"title: {title or understanding.title}"
    related = [r for r in understanding.related if f"title.related:{r.code}" in names]
    if related:
        return f"related title: {max(related, key=lambda r: r.weight).title}"
    past = [o for o in understanding.occupations if f"title.past_occupation:{o.code}" in names]
    if past:
        return f"past title ~ {max(past, key=lambda occupation: occupation.confidence).title}"
    if "title.past_words" in names:
        return f"past title: {understanding.title}"
    if "title.shingles" in names:
        return f"title: {title}" if title else None
    return None


def _point(source: Mapping[str, Any]) -> tuple[float, float] | None:
    """(lat, lon) of location.geo in any of the shapes Elasticsearch accepts for a geo_point."""
    location = source.get("location")
    geo = location.get("geo") if isinstance(location, Mapping) else None
    try:
        if isinstance(geo, Mapping):
            return float(geo["lat"]), float(geo["lon"])
        if isinstance(geo, list | tuple) and len(geo) >= 2:
            return float(geo[1]), float(geo[0])  # GeoJSON order: lon, lat
        if isinstance(geo, str) and "," in geo:
            lat, lon = geo.split(",", 1)
            return float(lat), float(lon)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _nearest(
    places: Iterable[PipelineLocation], point: tuple[float, float] | None
) -> tuple[float | None, PipelineLocation | None]:
    if point is None:
        return None, None
    best: tuple[tuple[float, float], PipelineLocation] | None = None
    for place in places:
        if place.kind == "country":
            continue  # a country's centre says nothing about how far someone lives
        distance = haversine_km(place.lat, place.lon, point[0], point[1])
        # Nearest is the place the candidate is least outside of: inside Texas beats 40 km from Austin.
        key = (max(0.0, distance - place.radius_km), distance)
        if best is None or key < best[0]:
            best = (key, place)
    return (None, None) if best is None else (best[0][1], best[1])


def _distance_words(distance: float) -> str:
    return "< 1 km" if distance < 1 else f"{distance:,.0f} km"
