"""PURE: why a candidate is on a list, in plain words, from a hit's ``matched_queries`` and ``_source``.

The clause names are those ``recmatch.ranking.query`` writes (its module docstring has the grammar); which of the
pipeline's occupations a hit's current title maps to is read from its ``occupation_codes``, as the query does not
name those clauses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recmatch.ranking.query import related_weights, required_skills, title_words
from recmatch.ranking.understand import PipelineLocation, Understanding
from recmatch.text.geo import haversine_km

__all__ = ["RELAXED_MARKS", "HitExplanation", "Wording", "matched_names"]

# Why a candidate is on a list only because the query was relaxed (HitExplanation.relaxed):
RELAXED_MARKS = (
    "outside_radius",  # lives outside the radius of every pipeline place (and is not remote for a remote pipeline)
    "related_title",  # a related occupation, not the pipeline's own
    "title_words",  # shares only some of the title's words or a skill
    "fewer_skills",  # has fewer of the pipeline's skills than the list asked for before relaxing
)


@dataclass(frozen=True, slots=True)
class HitExplanation:
    """What a recruiter reads next to a candidate."""

    reasons: tuple[str, ...]  # "title: Backend Engineer ~ Software Developers", "skills: Python", "27 km from Austin"
    matched_skills: tuple[str, ...]  # display names, in the pipeline's order
    distance_km: float | None  # to the centre of the nearest pipeline location; None without coordinates or places
    nearest_location: str | None  # that location's name (nearest: the one the candidate is least outside of)
    relaxed: tuple[str, ...] = ()  # RELAXED_MARKS that apply: what the candidate would not be listed without


def matched_names(hit: Mapping[str, Any]) -> frozenset[str]:
    """The clause names a hit matched (a list, or a name → score dict with include_named_queries_score)."""
    matched = hit.get("matched_queries") or ()
    return frozenset(str(name) for name in matched)


class Wording:
    """Reasons, matched skills and distance for the hits of one list (clause names are spelled once a list)."""

    def __init__(self, understanding: Understanding) -> None:
        self.understanding = understanding
        by_confidence = sorted(understanding.occupations, key=lambda o: -o.confidence)  # stable: first of equals
        self._same = tuple((o.code, o.title) for o in by_confidence)
        scored = {code for code, _ in related_weights(understanding)}
        self._related = tuple((r.code, r.title) for r in sorted(understanding.related, key=lambda r: -r.weight)
                              if r.code in scored)
        self._past = tuple((f"title.past_occupation:{o.code}", o.title) for o in by_confidence)
        self._skills = tuple((f"skill:{skill.name}", skill.display) for skill in understanding.skills)
        self._located = tuple((f"location:{index}", place.name) for index, place in enumerate(understanding.locations))
        self._places = tuple(place for place in understanding.locations if place.kind != "country")
        self._countries = frozenset(place.country for place in understanding.locations if place.kind == "country")
        # a country's clause is never widened, so matching it means living in it
        self._in_country = frozenset(f"location:{index}" for index, place in enumerate(understanding.locations)
                                     if place.kind == "country")
        self._required_skills = required_skills(understanding)
        self._own_titles = frozenset(("title.exact", "title.words"))
        # a weak title with words lets a skill alone qualify only once relaxed to title_words
        self._skill_alone_relaxed = understanding.weak_title and bool(title_words(understanding))
        self._any_title_word = frozenset(("title.exact", "title.words", "title.some_words", "title.past_some_words"))

    def describe(self, hit: Mapping[str, Any]) -> HitExplanation:
        names = matched_names(hit)
        source = hit.get("_source") or {}
        codes = frozenset(source.get("occupation_codes") or ())
        reasons: list[str] = []
        title_reason = self._title_reason(names, codes, str(source.get("title") or ""))
        if title_reason:
            reasons.append(title_reason)
        skills = tuple(display for name, display in self._skills if name in names)
        if skills:
            reasons.append("skills: " + ", ".join(skills))
        distance, nearest = _nearest(self._places, _point(source))
        if distance is not None and nearest is not None:
            inside_area = nearest.kind != "city" and distance <= nearest.radius_km
            reasons.append(f"in {nearest.name}" if inside_area else f"{_distance_words(distance)} from {nearest.name}")
        else:
            located = next((place for name, place in self._located if name in names), None)
            if located is not None:
                reasons.append(f"in {located}")
        if "remote" in names or (self.understanding.remote and source.get("open_to_remote") is True):
            reasons.append("open to remote")
        return HitExplanation(
            reasons=tuple(reasons),
            matched_skills=skills,
            distance_km=None if distance is None else round(distance, 1),
            nearest_location=None if nearest is None else nearest.name,
            relaxed=self._relaxed(names, codes, source, distance, nearest, len(skills)),
        )

    def _relaxed(self, names: frozenset[str], codes: frozenset[str], source: Mapping[str, Any],
                 distance: float | None, nearest: PipelineLocation | None, skills: int) -> tuple[str, ...]:
        marks: list[str] = []
        understanding = self.understanding
        if understanding.locations:
            location = source.get("location")
            country = location.get("country") if isinstance(location, Mapping) else None
            inside = (
                (distance is not None and nearest is not None and distance <= nearest.radius_km)
                or (country is not None and country in self._countries)
                or bool(names & self._in_country)
                or (understanding.remote and source.get("open_to_remote") is True)
            )
            if not inside:
                marks.append("outside_radius")
        own_occupation = any(code in codes for code, _ in self._same)
        if understanding.weak_title:
            if self._skill_alone_relaxed and not names & self._any_title_word and not own_occupation:
                marks.append("title_words")
        elif not names & self._own_titles and not own_occupation:
            marks.append("related_title" if any(code in codes for code, _ in self._related) else "title_words")
        if skills < self._required_skills:
            marks.append("fewer_skills")
        return tuple(marks)

    def _title_reason(self, names: frozenset[str], codes: frozenset[str], title: str) -> str | None:
        same = next((occupation for code, occupation in self._same if code in codes), None)
        if same is not None:
            return f"title: {title} ~ {same}" if title else f"title ~ {same}"
        if "title.exact" in names or "title.words" in names:
            return f"title: {title or self.understanding.title}"
        related = next((occupation for code, occupation in self._related if code in codes), None)
        if related is not None:
            return f"related title: {related}"
        past = next((occupation for name, occupation in self._past if name in names), None)
        if past is not None:
            return f"past title ~ {past}"
        if "title.past_words" in names:
            return f"past title: {self.understanding.title}"
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
    """The place (never a country: its centre says nothing about how far someone lives) POINT is least outside."""
    if point is None:
        return None, None
    best: tuple[tuple[float, float], PipelineLocation] | None = None
    for place in places:
        distance = haversine_km(place.lat, place.lon, point[0], point[1])
        # Nearest is the place the candidate is least outside of: inside Texas beats 40 km from Austin.
        key = (max(0.0, distance - place.radius_km), distance)
        if best is None or key < best[0]:
            best = (key, place)
    return (None, None) if best is None else (best[0][1], best[1])


def _distance_words(distance: float) -> str:
    return "< 1 km" if distance < 1 else f"{distance:,.0f} km"
