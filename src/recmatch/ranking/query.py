"""PURE: a pipeline's understanding + learned boosts + exclusions → one Elasticsearch search body. No I/O.

Shape of the body (``build_query``)::

    function_score                      the ranking: learned boosts, score_mode multiply, boost_mode multiply
      query: function_score             proximity (only beyond a place's radius: relaxed wider, or remote let in)
        query: bool
          filter    who qualifies       title (same words or occupation), location (or remote), skills
          should    what it is worth    title, occupation (dis_max), past titles (dis_max), skills
          must_not  exclusions          dismissed, already acted on, erased
    sort: _score desc, candidate_id asc (stable pages)

Qualifying and scoring are apart, so a relaxation step only changes a filter and never the score. Scores stay
non-negative: every clause adds a non-negative amount, proximity is a factor in [PROXIMITY_FLOOR, 1] and learned
boosts are factors in [MIN_BOOST, MAX_BOOST]. Proximity is its own ``function_score`` because it is the *best* of
one decay per place (score_mode max) while learned boosts multiply (score_mode multiply); one list cannot do both.
It is only there once a relaxation lets in candidates beyond a place's radius: before that it is 1 for everyone.

Clause names (``_name``; each hit's ``matched_queries`` lists those it matched — ``recmatch.ranking.reasons`` turns them
into words)::

    title.exact                         normalised title equals the pipeline's
    title.words                         every word of the pipeline title is in the candidate's title
    title.some_words                    some of the title's words (rarer ones weigh more: BM25)
    title.shingles                      word pairs/triples of the title in common (partial phrase overlap)
    title.past_occupation:<code>        a past title maps to an occupation the pipeline title maps to
    title.past_words                    every word of the pipeline title is in a past title
    skill:<normalised skill>            has this pipeline skill
    seniority, seniority.near           the level the pipeline title states ("Senior ..."), or one next to it
    title.past_some_words               some of the title's words in a past title
    location:<i>                        within the (possibly widened) radius of the pipeline's i-th resolved place
                                        (a country: lives in it); in the location filter
    remote                              open to remote work, and the pipeline accepts remote or was relaxed to
                                        remote_candidates (in the location filter when the pipeline has places,
                                        else a slight score preference)

The current title's occupations have no names: the pipeline's own (weight W_OCCUPATION × confidence) and related
ones (W_RELATED × weight) share one dis_max of a clause per weight (``_by_weight``), and ``reasons`` reads which of
them a hit has from its ``occupation_codes`` (the same keyword values the clauses match).

Who qualifies by title: a candidate whose title has all of the pipeline title's words, or one of its occupations.
A title that resolves weakly (``Understanding.weak_title``: no occupation reading at WEAK_TITLE_CONFIDENCE) filters
on neither; there any of its words (in the current or a past title) or one of its occupation readings qualifies,
and the title words and skills rank together. One of the pipeline's skills alone qualifies only once relaxed to
``title_words`` (or when the title has no words): the skills a taxonomy gives a title are often common ones
(Microsoft Excel), and one of them would let most of a metro area in, each of them scored.

Relaxation (``RELAXATION_STEPS``, applied cumulatively in this order while fewer than ``size`` candidates qualify;
``applicable_steps`` drops those that would change nothing for a pipeline):

    wider_radius       the location filter reaches RADIUS_WIDENING × each location's radius (at most
                       MAX_WIDENED_RADIUS_KM, never less than the radius); the proximity decay keeps the
                       original radius, so nearer candidates still rank higher.
    related_titles     related occupations qualify for the title filter (before, they only add to the score).
    fewer_skills       no minimum number of pipeline skills (before: ``required_skills``); skills still score.
    title_words        any word of the title (current or past title) or any pipeline skill qualifies (a weakly
                       resolved title qualifies by any of its words already: the step adds its skills); for a
                       title that resolves, learned factors then apply only to candidates the title filter
                       before this step lets in (with related occupations): a learned place or skill reorders
                       the pipeline's own jobs, never lifts an unrelated one above them.
    widest_radius      the location filter reaches MAX_WIDENED_RADIUS_KM around each place.
    remote_candidates  (a pipeline that does not accept remote) candidates open to remote work qualify too.

There is no step beyond: a pipeline with places never lists someone who is neither within MAX_WIDENED_RADIUS_KM of
one of them nor open to remote. A shorter list beats one padded from other continents.

No text from the pipeline ever reaches ``query_string`` or ``simple_query_string``: titles and skills only appear as
values of ``term``, ``terms`` and ``match`` queries, which do not parse a query syntax.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from recmatch.ranking.understand import PipelineLocation, Understanding
from recmatch.text.normalize import TITLE_STOPWORDS
from recmatch.text.taxonomy import SENIORITY_WORDS

__all__ = [
    "MAX_BOOST",
    "MIN_BOOST",
    "RELAXATION_STEPS",
    "SOURCE_FIELDS",
    "LearnedBoosts",
    "LearnedFactor",
    "RelaxStep",
    "applicable_steps",
    "baseline_query",
    "build_query",
    "count_query",
    "related_weights",
    "required_skills",
    "title_words",
    "widened_radius_km",
    "widest_radius_km",
]

RelaxStep = Literal[
    "wider_radius", "related_titles", "fewer_skills", "title_words", "widest_radius", "remote_candidates"
]
RELAXATION_STEPS: tuple[RelaxStep, ...] = get_args(RelaxStep)

DEFAULT_SIZE = 125
MAX_SIZE = 10_000  # the candidates index's max_result_window

# Title clauses (constant scores, so that a score reads as a sum of reasons).
W_TITLE_EXACT = 4.0
W_TITLE_WORDS = 3.0
W_TITLE_SHINGLES = 0.5  # times BM25 on the shingles field
W_OCCUPATION = 10.0  # times the title → occupation confidence
W_RELATED = 10.0  # times the related occupation's weight (tier weight × confidence, see understand.TIER_WEIGHTS)
W_PAST_OCCUPATION = 2.5  # times the confidence
W_PAST_WORDS = 1.0
W_TITLE_SOME_WORDS = 0.3  # times BM25 of the title's words on the candidate's title (any of them)
W_PAST_SOME_WORDS = 0.1  # the same on past titles
# Seniority the title states: the same level adds W_SENIORITY, the next one up or down half of it.
W_SENIORITY = 1.5
SENIORITY_LEVELS: tuple[str, ...] = ("entry", "junior", "mid", "senior", "lead", "manager", "director", "executive")
# Skills: BM25 on a keyword field is the skill's rarity (idf), so "Kubernetes" outweighs "Microsoft Excel".
W_SKILL = 0.4
W_REMOTE = 0.5  # open to remote when the pipeline has no place and accepts remote: a slight preference

# Proximity: 1 within a place's radius, 0.5 one more radius out, never below the floor. Far candidates keep their
# order by title and skills rather than by how very far they are, and one of the pipeline's occupation far away
# (10 × 0.4) stays level with a related one inside the radius (tier 1: 5, tier 2: 3.5).
PROXIMITY_FLOOR = 0.4
PROXIMITY_DECAY = 0.5

RADIUS_WIDENING = 3.0
MAX_WIDENED_RADIUS_KM = 500.0

# Learned boosts are factors: ES rejects negative scores, so a negative signal multiplies by a factor < 1.
MIN_BOOST = 0.25
MAX_BOOST = 4.0
MAX_LEARNED_PRODUCT = 16.0  # function_score max_boost: what all learned factors together may multiply by
MAX_LEARNED_FACTORS = 32

SOURCE_FIELDS: tuple[str, ...] = (
    "candidate_id", "name", "title", "headline", "company", "past_titles", "occupation_codes", "skills",
    "location", "open_to_remote", "open_to_work", "years_experience", "seniority", "allow_export", "profile_url",
    "updated_at",
)


@dataclass(frozen=True)
class LearnedFactor:
    """One learned preference: candidates matching ``filter`` have their score multiplied by ``weight``."""

    name: str  # "<kind>:<key>", as the learner names it
    filter: Mapping[str, Any]
    weight: float


@dataclass(frozen=True)
class LearnedBoosts:
    """Per-pipeline factors learned from hiring signals, each bounded to [MIN_BOOST, MAX_BOOST] (1: neutral); the
    product of all a candidate matches is at most MAX_LEARNED_PRODUCT. At most MAX_LEARNED_FACTORS are used."""

    factors: tuple[LearnedFactor, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict."""
        return {"factors": [{"name": f.name, "filter": dict(f.filter), "weight": f.weight} for f in self.factors]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedBoosts:
        """The inverse of ``to_dict``."""
        return cls(factors=tuple(LearnedFactor(name=str(f["name"]), filter=dict(f["filter"]), weight=float(f["weight"]))
                                 for f in data.get("factors") or ()))


def build_query(
    *,
    understanding: Understanding,
    boosts: LearnedBoosts | None = None,
    exclude_ids: Collection[str] = (),
    relax: Sequence[RelaxStep] = (),
    size: int = DEFAULT_SIZE,
) -> dict[str, Any]:
    """The search body for a pipeline: ranked, named clauses, relaxed by the given steps."""
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be within 1..{MAX_SIZE}, not {size}")
    unknown = [step for step in relax if step not in RELAXATION_STEPS]
    if unknown:
        raise ValueError(f"unknown relaxation steps: {', '.join(map(str, unknown))}")
    steps = frozenset(relax)

    filters: list[dict[str, Any]] = []
    qualifying_codes = [occupation.code for occupation in understanding.occupations]
    if "related_titles" in steps:
        qualifying_codes += [code for code, _ in related_weights(understanding)]
    title_filter = _title_filter(understanding, qualifying_codes, loose="title_words" in steps)
    if title_filter is not None:
        filters.append(title_filter)
    # Learned factors reorder those the pipeline's title brings; one listed only because the title was relaxed to
    # some of its words keeps its own score (a learned place or skill never lifts an unrelated job above them).
    anchor = None
    if "title_words" in steps and not understanding.weak_title:
        with_related = [*qualifying_codes, *(code for code, _ in related_weights(understanding))]
        anchor = _title_filter(understanding, with_related, loose=False)
    proximity_varies = False
    if understanding.locations:
        widen = "widest" if "widest_radius" in steps else "wider" if "wider_radius" in steps else None
        remote = understanding.remote or "remote_candidates" in steps
        filters.append(_location_filter(understanding, widen=widen, remote=remote))
        # Before the filter reaches past a place's radius, everyone it lets through is within a radius (the decay is 1
        # inside its offset), in a country place (1) or open to remote where the pipeline accepts remote (1):
        # proximity is 1 for all, and scoring it would only cost time.
        proximity_varies = (remote and not understanding.remote) or any(
            _filter_radius_km(place, widen) > place.radius_km
            for place in understanding.locations if place.kind != "country")
    needed = required_skills(understanding)
    if needed and "fewer_skills" not in steps:
        filters.append({
            "bool": {
                "should": [{"term": {"skills": skill.name}} for skill in understanding.skills],
                "minimum_should_match": needed,
            }
        })

    scoring = _title_clauses(understanding)
    scoring += [_skill_clause(skill.name) for skill in understanding.skills]
    seniority = _seniority_clause(understanding)
    if seniority is not None:
        scoring.append(seniority)
    if understanding.remote and not understanding.locations:
        scoring.append(_named({"term": {"open_to_remote": True}}, "remote", W_REMOTE))

    bool_query: dict[str, Any] = {}
    if scoring:
        bool_query["should"] = scoring
    if filters:
        bool_query["filter"] = filters
    excluded = sorted(set(exclude_ids))
    if excluded:
        bool_query["must_not"] = [{"terms": {"candidate_id": excluded}}]
    if not bool_query:
        bool_query = {"must": [{"match_all": {}}]}

    query: dict[str, Any] = {"bool": bool_query}
    if proximity_varies:
        query = {
            "function_score": {
                "query": query,
                "functions": _proximity_functions(understanding),
                "score_mode": "max",
                "boost_mode": "multiply",
            }
        }
    return {
        "query": {
            "function_score": {
                "query": query,
                "functions": _boost_functions(boosts, understanding, anchor=anchor),
                "score_mode": "multiply",
                "boost_mode": "multiply",
                "max_boost": MAX_LEARNED_PRODUCT,
            }
        },
        "size": size,
        "track_total_hits": size,  # enough to know whether the list is full, cheaper than an exact count
        "sort": ["_score", {"candidate_id": "asc"}],
        "_source": {"includes": list(SOURCE_FIELDS)},
    }


def count_query(**arguments: Any) -> dict[str, Any]:
    """A body that only counts who qualifies for ``build_query(**arguments)``, up to its size: its filters and
    exclusions with no hits asked for. What a candidate is worth (the optional clauses, proximity and learned factors)
    never decides who qualifies, so it is left out; Elasticsearch stops counting at the size, so relaxation probes
    every level for little. (A query with no filter at all, where the optional clauses do decide, is counted whole.)"""
    body = build_query(**arguments)
    query = body["query"]
    while "function_score" in query:
        query = query["function_score"]["query"]
    qualifying = query.get("bool", {})
    if "filter" in qualifying:
        query = {"bool": {part: qualifying[part] for part in ("filter", "must_not") if part in qualifying}}
    else:
        query = body["query"]
    return {"query": query, "size": 0, "track_total_hits": body["track_total_hits"]}


def baseline_query(
    *, title: str, skills: Sequence[str], size: int, understanding: Understanding | None = None
) -> dict[str, Any]:
    """The BM25 query an operator would type: one ``multi_match`` of the title and the skills together over
    ``title^3, past_titles, headline, skills``, filtered to the radius of the pipeline's places (or open to remote
    when the pipeline accepts remote) when UNDERSTANDING gives its places. The evaluation baseline."""
    text = " ".join([title, *skills])
    query: dict[str, Any] = {
        "multi_match": {"query": text, "fields": ["title^3", "past_titles", "headline", "skills_text"]}
    }
    if understanding is not None and understanding.locations:
        query = {"bool": {"must": [query], "filter": [{"bool": {"should": _near(understanding),
                                                                "minimum_should_match": 1}}]}}
    return {"query": query, "size": size, "_source": {"includes": list(SOURCE_FIELDS)}}


def _near(understanding: Understanding) -> list[dict[str, Any]]:
    """Inside the radius of one of the pipeline's places (a country: lives in it), or remote when it accepts remote;
    the location filter before any relaxation, without clause names."""
    near: list[dict[str, Any]] = []
    for place in understanding.locations:
        if place.kind == "country":
            near.append({"term": {"location.country": place.country}})
        else:
            near.append({"geo_distance": {"distance": f"{_km(place.radius_km)}km",
                                          "location.geo": {"lat": place.lat, "lon": place.lon}}})
    if understanding.remote:
        near.append({"term": {"open_to_remote": True}})
    return near


def required_skills(understanding: Understanding) -> int:
    """How many pipeline skills a candidate needs before ``fewer_skills``: one per four listed, at most two."""
    return min(2, math.ceil(len(understanding.skills) / 4))


def widened_radius_km(radius_km: float) -> float:
    """The radius after ``wider_radius``."""
    return max(radius_km, min(radius_km * RADIUS_WIDENING, MAX_WIDENED_RADIUS_KM))


def widest_radius_km(radius_km: float) -> float:
    """The radius after ``widest_radius``."""
    return max(radius_km, MAX_WIDENED_RADIUS_KM)


def applicable_steps(understanding: Understanding) -> tuple[RelaxStep, ...]:
    """The relaxation steps that change the query for this pipeline, in order."""
    steps: list[RelaxStep] = []
    places = [p for p in understanding.locations if p.kind != "country"]
    if any(widened_radius_km(p.radius_km) > p.radius_km for p in places):
        steps.append("wider_radius")
    if understanding.related and not understanding.weak_title:
        steps.append("related_titles")
    if required_skills(understanding):
        steps.append("fewer_skills")
    words, skills = title_words(understanding), {skill.name for skill in understanding.skills}
    # a weak title already qualifies by any of its words; the step adds its skills (when it has words at all)
    if (words and skills) if understanding.weak_title else (words or skills):
        steps.append("title_words")
    if any(widest_radius_km(p.radius_km) > widened_radius_km(p.radius_km) for p in places):
        steps.append("widest_radius")
    if understanding.locations and not understanding.remote:
        steps.append("remote_candidates")
    return tuple(steps)


# -- clauses ---------------------------------------------------------------------------------------------------------


def _named(query: Mapping[str, Any], name: str, boost: float) -> dict[str, Any]:
    """A constant-score clause: matching it adds exactly ``boost``."""
    return {"constant_score": {"filter": dict(query), "boost": round(boost, 4), "_name": name}}


def _title_filter(understanding: Understanding, codes: Sequence[str], *, loose: bool) -> dict[str, Any] | None:
    """Who qualifies by title: the same words, or an occupation (and, relaxed, a related one) in common; for a
    weakly read title (or relaxed to ``title_words``), any of its words or any of the pipeline's skills."""
    should: list[dict[str, Any]] = []
    if understanding.title_norm:
        should.append({"match": {"title_norm": {"query": understanding.title_norm, "operator": "and"}}})
    if codes:
        should.append({"terms": {"occupation_codes": sorted(set(codes))}})
    words = " ".join(sorted(title_words(understanding)))
    if loose or understanding.weak_title:
        if words:
            should.append({"match": {"title_norm": {"query": words}}})
            should.append({"match": {"past_titles_norm": {"query": words}}})
        # A skill alone qualifies once relaxed, or for a weak title that has no words to qualify on: the skills a
        # taxonomy gives a title are often common ones, and one of them lets most of a metro area in.
        if understanding.skills and (loose or not words):
            should.append({"terms": {"skills": [skill.name for skill in understanding.skills]}})
    if not should:
        return None  # a title of punctuation only, mapped to nothing: rank by skills and place alone
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _title_clauses(understanding: Understanding) -> list[dict[str, Any]]:
    """What a title match is worth; a title shared by many occupations is worth its best reading, not their sum."""
    clauses: list[dict[str, Any]] = []
    title_norm = understanding.title_norm
    words = " ".join(sorted(title_words(understanding)))
    if title_norm:
        clauses.append(_named({"term": {"title_norm.keyword": title_norm}}, "title.exact", W_TITLE_EXACT))
        clauses.append(_named(
            {"match": {"title_norm": {"query": title_norm, "operator": "and"}}}, "title.words", W_TITLE_WORDS
        ))
    if words:
        clauses.append({"match": {"title_norm": {"query": words, "boost": W_TITLE_SOME_WORDS,
                                                 "_name": "title.some_words"}}})
        clauses.append({"match": {"past_titles_norm": {"query": words, "boost": W_PAST_SOME_WORDS,
                                                       "_name": "title.past_some_words"}}})
        if len(title_norm.split()) > 1:
            clauses.append({
                "match": {"title_norm.shingles": {"query": title_norm, "boost": W_TITLE_SHINGLES,
                                                  "_name": "title.shingles"}}
            })
    occupations = [(o.code, W_OCCUPATION * o.confidence) for o in understanding.occupations]
    occupations += [(code, W_RELATED * weight) for code, weight in related_weights(understanding)]
    if occupations:
        clauses.append({"dis_max": {"queries": _by_weight("occupation_codes", occupations)}})
    past = [
        _named(
            {"term": {"past_occupation_codes": o.code}},
            f"title.past_occupation:{o.code}",
            W_PAST_OCCUPATION * o.confidence,
        )
        for o in understanding.occupations
    ]
    if title_norm:
        past.append(_named(
            {"match": {"past_titles_norm": {"query": title_norm, "operator": "and"}}}, "title.past_words", W_PAST_WORDS
        ))
    if past:
        clauses.append({"dis_max": {"queries": past}})
    return clauses


def _by_weight(field: str, weighted: Sequence[tuple[str, float]]) -> list[dict[str, Any]]:
    """A dis_max's constant-score clauses on FIELD, one per distinct weight (heaviest first) holding every value of
    that weight: the best match counts, as with one clause per value, for a fraction of the clauses to evaluate (a
    title reads as up to ~60 occupations, in a handful of weights). Unnamed: which values a hit has is in its
    ``_source``, and naming each would have Elasticsearch run every clause again for every hit it returns."""
    values: dict[float, list[str]] = {}
    for value, weight in weighted:
        values.setdefault(round(weight, 4), []).append(value)
    return [{"constant_score": {"filter": {"terms": {field: codes}}, "boost": weight}}
            for weight, codes in sorted(values.items(), reverse=True)]


def title_words(understanding: Understanding) -> set[str]:
    """The title's words that say what the job is (no stopwords, no seniority words)."""
    return {word for word in understanding.title_norm.split()
            if word not in TITLE_STOPWORDS and word not in SENIORITY_WORDS}


def _seniority_clause(understanding: Understanding) -> dict[str, Any] | None:
    """Prefer the level the title states, then its neighbours: a senior role never lists juniors above seniors."""
    if understanding.seniority not in SENIORITY_LEVELS:
        return None
    level = SENIORITY_LEVELS.index(understanding.seniority)
    near = [SENIORITY_LEVELS[i] for i in (level - 1, level + 1) if 0 <= i < len(SENIORITY_LEVELS)]
    return {"dis_max": {"queries": [
        _named({"term": {"seniority": understanding.seniority}}, "seniority", W_SENIORITY),
        _named({"terms": {"seniority": near}}, "seniority.near", W_SENIORITY / 2),
    ]}}


def related_weights(understanding: Understanding) -> list[tuple[str, float]]:
    """The related occupations the query scores (code, weight): not one of the pipeline's own, weighing something."""
    own = {occupation.code for occupation in understanding.occupations}
    return [(r.code, r.weight) for r in understanding.related if r.code not in own and r.weight > 0]


def _skill_clause(skill: str) -> dict[str, Any]:
    return {"term": {"skills": {"value": skill, "boost": W_SKILL, "_name": f"skill:{skill}"}}}


def _location_filter(
    understanding: Understanding, *, widen: Literal["wider", "widest"] | None, remote: bool
) -> dict[str, Any]:
    should = [_within(place, index, widen=widen) for index, place in enumerate(understanding.locations)]
    if remote:
        should.append({"term": {"open_to_remote": {"value": True, "_name": "remote"}}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _within(place: PipelineLocation, index: int, *, widen: Literal["wider", "widest"] | None) -> dict[str, Any]:
    name = f"location:{index}"
    if place.kind == "country":
        return {"term": {"location.country": {"value": place.country, "_name": name}}}
    return {
        "geo_distance": {
            "distance": f"{_km(_filter_radius_km(place, widen))}km",
            "location.geo": {"lat": place.lat, "lon": place.lon},
            "_name": name,
        }
    }


def _filter_radius_km(place: PipelineLocation, widen: Literal["wider", "widest"] | None) -> float:
    """How far from a place the location filter reaches."""
    if widen == "wider":
        return widened_radius_km(place.radius_km)
    if widen == "widest":
        return widest_radius_km(place.radius_km)
    return place.radius_km


def _proximity_functions(understanding: Understanding) -> list[dict[str, Any]]:
    functions: list[dict[str, Any]] = []
    has_geo = {"exists": {"field": "location.geo"}}  # a decay on a missing field would score 1
    for place in understanding.locations:
        if place.kind == "country":
            functions.append({"filter": {"term": {"location.country": place.country}}, "weight": 1.0})
            continue
        radius = f"{_km(place.radius_km)}km"
        functions.append({
            "filter": has_geo,
            "gauss": {
                "location.geo": {
                    "origin": {"lat": place.lat, "lon": place.lon},
                    "offset": radius,
                    "scale": radius,
                    "decay": PROXIMITY_DECAY,
                }
            },
        })
    if understanding.remote:
        functions.append({"filter": {"term": {"open_to_remote": True}}, "weight": 1.0})
    functions.append({"weight": PROXIMITY_FLOOR})
    return functions


def _boost_functions(boosts: LearnedBoosts | None, understanding: Understanding, *,
                     anchor: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    if boosts is None:
        return []
    functions: list[dict[str, Any]] = []
    for factor in boosts.factors[:MAX_LEARNED_FACTORS]:
        weight = _bounded(factor.weight)
        if weight != 1.0 and factor.filter:
            applies = dict(factor.filter) if anchor is None else {"bool": {"filter": [dict(factor.filter), anchor]}}
            functions.append({"filter": applies, "weight": weight})
    return functions


def _bounded(weight: float) -> float:
    # ES rejects negative scores, so a negative signal multiplies by a factor < 1 rather than adding.
    if not math.isfinite(weight):
        return 1.0
    return round(min(MAX_BOOST, max(MIN_BOOST, weight)), 4)


def _km(radius: float) -> str:
    return f"{radius:.3f}".rstrip("0").rstrip(".")
