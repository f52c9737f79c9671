"""What recmatch understands of a pipeline: occupations, related occupations, skills, places, remote.

Computed once when a pipeline is stored and kept, as ``Understanding.to_dict()``, in the pipeline document, so the query
builder (``recmatch.ranking.query``) never has to look at the taxonomy or the gazetteer again. Location texts that name
no place and do not mean remote land in ``unresolved_locations``: the response reports them back to the CRM.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args
from weakref import WeakKeyDictionary

from recmatch.core.models import PipelineIn, Seniority
from recmatch.text import geo
from recmatch.text.geo import PlaceKind
from recmatch.text.normalize import display_skill, normalize_skill, stated_seniority
from recmatch.text.taxonomy import Taxonomy, TitleReading

__all__ = [
    "MAX_OCCUPATIONS",
    "MAX_RELATED",
    "SKILL_FIT_FLOOR",
    "TIER_WEIGHTS",
    "WEAK_TITLE_CONFIDENCE",
    "MatchedOccupation",
    "PipelineLocation",
    "RelatedOccupation",
    "Skill",
    "Understanding",
    "understand",
]

# At most this many occupations a title maps to, most confident first (a generic title maps to many).
MAX_OCCUPATIONS = 6
# At most this many related occupations, heaviest first.
MAX_RELATED = 30
# How much a related occupation counts against the occupation it relates to, by O*NET relatedness tier
# (1 Primary-Short, 2 Primary-Long, 3 Supplemental); times the confidence of that occupation.
TIER_WEIGHTS: Mapping[int, float] = {1: 0.5, 2: 0.35, 3: 0.2}
# A title reading whose occupation lists none of the pipeline's skills keeps this share of its confidence; one that
# lists them all (as well as the best reading) keeps all of it.
SKILL_FIT_FLOOR = 0.5
# Below this best-occupation confidence a title is read weakly: candidates qualify by any of its words or the
# pipeline's skills, not only by its occupations or all of its words (recmatch.ranking.query).
WEAK_TITLE_CONFIDENCE = 0.6
# Places whose natural size widens the pipeline's radius (a city keeps the radius the recruiter chose).
_WIDE_KINDS: frozenset[str] = frozenset(("metro", "region", "country"))


@dataclass(frozen=True, slots=True)
class MatchedOccupation:
    """An occupation the pipeline title maps to; confidence in 0..1 (1.0: an exact title match).

    When a title has several readings, each one's confidence is scaled by how well the occupation lists the
    pipeline's skills (rare skills weigh more), between SKILL_FIT_FLOOR and 1 of the taxonomy's confidence.
    """

    code: str
    title: str
    confidence: float


@dataclass(frozen=True, slots=True)
class RelatedOccupation:
    """An occupation related to one the title maps to; weight = tier weight × that occupation's confidence."""

    code: str
    title: str
    tier: int
    weight: float


@dataclass(frozen=True, slots=True)
class Skill:
    """A pipeline skill: the normalised keyword the index holds, and the name to show."""

    name: str
    display: str


@dataclass(frozen=True, slots=True)
class PipelineLocation:
    """A resolved pipeline location with the radius that applies around it."""

    text: str  # as the CRM sent it
    name: str  # as shown in reasons ("Austin")
    lat: float
    lon: float
    country: str
    region: str | None
    kind: PlaceKind
    radius_km: float  # max(pipeline radius, the place's natural radius for metros, regions, countries)


@dataclass(frozen=True, slots=True)
class Understanding:
    """A pipeline as the ranking reads it."""

    title: str
    title_norm: str  # the normalised title as it was read: reordered ("Manager, Sales") and repaired ("schoo lcook")
    occupations: tuple[MatchedOccupation, ...]
    related: tuple[RelatedOccupation, ...]
    skills: tuple[Skill, ...]
    locations: tuple[PipelineLocation, ...]
    remote: bool
    unresolved_locations: tuple[str, ...]
    radius_km: float
    title_confidence: float = 1.0  # how sure the title's best occupation reading is (taxonomy confidence, 0..1)
    seniority: Seniority | None = None  # the level the title states ("Senior ...")

    @property
    def weak_title(self) -> bool:
        """Whether the title resolves too weakly to filter on its occupations or on all of its words."""
        return self.title_confidence < WEAK_TITLE_CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict, as stored in the pipeline document."""
        return {
            "title": self.title,
            "title_norm": self.title_norm,
            "occupations": [
                {"code": o.code, "title": o.title, "confidence": o.confidence} for o in self.occupations
            ],
            "related": [{"code": r.code, "title": r.title, "tier": r.tier, "weight": r.weight} for r in self.related],
            "skills": [{"name": s.name, "display": s.display} for s in self.skills],
            "locations": [
                {
                    "text": place.text,
                    "name": place.name,
                    "lat": place.lat,
                    "lon": place.lon,
                    "country": place.country,
                    "region": place.region,
                    "kind": place.kind,
                    "radius_km": place.radius_km,
                }
                for place in self.locations
            ],
            "remote": self.remote,
            "unresolved_locations": list(self.unresolved_locations),
            "radius_km": self.radius_km,
            "title_confidence": self.title_confidence,
            "seniority": self.seniority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Understanding:
        """The inverse of ``to_dict``; ValueError when the dict is not one."""
        try:
            return cls(
                title=str(data["title"]),
                title_norm=str(data["title_norm"]),
                occupations=tuple(
                    MatchedOccupation(code=str(o["code"]), title=str(o["title"]), confidence=float(o["confidence"]))
                    for o in data["occupations"]
                ),
                related=tuple(
                    RelatedOccupation(
                        code=str(r["code"]), title=str(r["title"]), tier=int(r["tier"]), weight=float(r["weight"])
                    )
                    for r in data["related"]
                ),
                skills=tuple(Skill(name=str(s["name"]), display=str(s["display"])) for s in data["skills"]),
                locations=tuple(_location_from_dict(place) for place in data["locations"]),
                remote=bool(data["remote"]),
                unresolved_locations=tuple(str(text) for text in data["unresolved_locations"]),
                radius_km=float(data["radius_km"]),
                # stored before titles had a confidence: treated as resolved, as they were then
                title_confidence=float(data.get("title_confidence", 1.0)),
                seniority=data.get("seniority"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a stored pipeline understanding: {error!r}") from error


def _location_from_dict(data: Mapping[str, Any]) -> PipelineLocation:
    kind = data["kind"]
    if kind not in get_args(PlaceKind):
        raise ValueError(f"unknown place kind {kind!r}")
    return PipelineLocation(
        text=str(data["text"]),
        name=str(data["name"]),
        lat=float(data["lat"]),
        lon=float(data["lon"]),
        country=str(data["country"]),
        region=None if data.get("region") is None else str(data["region"]),
        kind=kind,
        radius_km=float(data["radius_km"]),
    )


def understand(*, pipeline: PipelineIn, taxonomy: Taxonomy) -> Understanding:
    """Map a pipeline's title, skills and locations onto occupations, index keywords and places."""
    skills = _skills(pipeline.skills)
    reading = taxonomy.read_title(pipeline.title)
    occupations = _occupations(reading, skills, taxonomy)
    locations: list[PipelineLocation] = []
    unresolved: list[str] = []
    remote = pipeline.remote_ok
    for text in dict.fromkeys(pipeline.locations):
        if geo.is_remote(text):
            # "Remote", "Remote - US": remote candidates qualify; the text names no place to search around.
            remote = True
            continue
        place = geo.resolve(text)
        if place is None:
            unresolved.append(text)
            continue
        location = _pipeline_location(text, place, pipeline.radius_km)
        if all((other.lat, other.lon, other.radius_km) != (location.lat, location.lon, location.radius_km)
               for other in locations):
            locations.append(location)
    return Understanding(
        title=pipeline.title,
        title_norm=reading.key,
        occupations=occupations,
        related=_related(occupations, taxonomy),
        skills=skills,
        locations=tuple(locations),
        remote=remote,
        unresolved_locations=tuple(unresolved),
        radius_km=float(pipeline.radius_km),
        title_confidence=reading.confidence,
        seniority=stated_seniority(reading.key),
    )


def _occupations(reading: TitleReading, skills: tuple[Skill, ...], taxonomy: Taxonomy) -> tuple[MatchedOccupation, ...]:
    """The title's occupations; when it has several readings, the pipeline's skills say which fits best."""
    matches = reading.matches
    fits = [_skill_fit(match.code, skills, taxonomy) for match in matches]
    best_fit = max(fits, default=0.0)
    occupations = []
    for match, fit in zip(matches, fits, strict=True):
        # A reading whose occupation lists none of the skills keeps SKILL_FIT_FLOOR of its confidence.
        factor = 1.0 if best_fit == 0 else SKILL_FIT_FLOOR + (1 - SKILL_FIT_FLOOR) * fit / best_fit
        occupations.append(
            MatchedOccupation(code=match.code, title=match.title, confidence=round(match.confidence * factor, 4))
        )
    occupations.sort(key=lambda occupation: -occupation.confidence)
    return tuple(occupations[:MAX_OCCUPATIONS])


def _skill_fit(code: str, skills: tuple[Skill, ...], taxonomy: Taxonomy) -> float:
    """The share of the pipeline's skills (each weighted by how few occupations list it) the occupation lists."""
    if not skills:
        return 0.0
    rarity = _skill_rarity(taxonomy)
    listed = {normalize_skill(name) for name, _ in taxonomy.skills(code)}
    total = sum(rarity.get(skill.name, rarity[""]) for skill in skills)
    return sum(rarity.get(skill.name, rarity[""]) for skill in skills if skill.name in listed) / total


_RARITY: WeakKeyDictionary[Taxonomy, dict[str, float]] = WeakKeyDictionary()


def _skill_rarity(taxonomy: Taxonomy) -> dict[str, float]:
    """Normalised skill → idf over occupations ("" holds the weight of a skill no occupation lists)."""
    rarity = _RARITY.get(taxonomy)
    if rarity is None:
        listing: Counter[str] = Counter()
        codes = taxonomy.codes()
        for code in codes:
            listing.update({normalize_skill(name) for name, _ in taxonomy.skills(code)})
        rarity = {skill: math.log(1 + len(codes) / count) for skill, count in listing.items()}
        rarity[""] = math.log(1 + len(codes))
        _RARITY[taxonomy] = rarity
    return rarity


def _related(occupations: tuple[MatchedOccupation, ...], taxonomy: Taxonomy) -> tuple[RelatedOccupation, ...]:
    """Occupations related to the matched ones (not matched themselves), each at its heaviest weight."""
    own = {occupation.code for occupation in occupations}
    best: dict[str, tuple[float, int]] = {}
    for occupation in occupations:
        for code, tier in taxonomy.related(occupation.code):
            if code in own:
                continue
            weight = round(TIER_WEIGHTS.get(tier, min(TIER_WEIGHTS.values())) * occupation.confidence, 4)
            if weight > best.get(code, (0.0, 0))[0]:
                best[code] = (weight, tier)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1], item[0]))[:MAX_RELATED]
    return tuple(
        RelatedOccupation(code=code, title=taxonomy.occupation(code).title, tier=tier, weight=weight)
        for code, (weight, tier) in ranked
    )


def _skills(texts: list[str]) -> tuple[Skill, ...]:
    skills: dict[str, Skill] = {}
    for text in texts:
        name = normalize_skill(text)
        if name and name not in skills:
            skills[name] = Skill(name=name, display=display_skill(text))
    return tuple(skills.values())


def _pipeline_location(text: str, place: geo.Place, radius_km: float) -> PipelineLocation:
    radius = max(radius_km, place.radius_km) if place.kind in _WIDE_KINDS else radius_km
    return PipelineLocation(
        text=text,
        name=place.name,
        lat=place.lat,
        lon=place.lon,
        country=place.country,
        region=place.region,
        kind=place.kind,
        radius_km=float(radius),
    )
