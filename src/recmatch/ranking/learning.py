"""PURE: a pipeline's hiring signals → what separates the wanted from the unwanted → query factors and words. No I/O.

Flow (the API keeps ``LearningState.to_dict()`` in the pipeline document's ``learned`` field)::

    example_of(candidate _source, signal, reason)  →  record(state, example)  →  new state (newest MAX_EXAMPLES kept)
    learned_boosts(state, understanding)           →  LearnedBoosts for query.build_query (None: nothing learned)
    describe(state, understanding, label_of)       →  "more like: Kubernetes (4 of 5 saves have it, 0 of 6 …)"

What a recruiter teaches is what the pipeline's fields do not say, so the learner asks what *separates* the
candidates acted on positively (save, InMail, export) from those dismissed. One small model per feature kind
(``FEATURE_KINDS``): an L2-regularised logistic regression (a Gaussian prior on each weight, an unpenalised
intercept) over the kind's binary features — positives against the dismissals the reason blames on that kind
(a "skills" dismissal is evidence about skills, not about the employer), the vague ("other") dismissals at
``VAGUE_WEIGHT`` and the candidates passed over on a page the recruiter worked at ``PASSED_WEIGHT``. A feature
every save and every dismissal share lands in the intercept, not in a weight; the prior keeps 5–25 examples from
over-reading; a kind needs evidence on both sides before it is fitted, and at least one dismissal that blames it
(or a vague one): candidates passed over only add weight to what a dismissal said; a weight needs ``min_support``
examples on its side (one save never makes an employer preference) and at least ``MIN_LOG_WEIGHT`` before it
applies.

A weight ``w`` becomes the query factor ``exp(w)`` on a filter (a term, a years range, a distance to the nearest
pipeline place), bounded by the query builder; the pipeline's own title, skills and places stay the anchor (the
filters and the base score), factors only reorder what qualifies. Adding a kind of learned feature is one
``FeatureKind`` declaration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np

from recmatch.ranking.query import MAX_BOOST, MIN_BOOST, LearnedBoosts, LearnedFactor
from recmatch.ranking.understand import Understanding
from recmatch.text.geo import haversine_km
from recmatch.text.normalize import normalize_skill, normalize_title

__all__ = [
    "DISMISS_REASONS",
    "FEATURE_KINDS",
    "MAX_EXAMPLES",
    "MAX_FACTORS",
    "DismissReason",
    "Example",
    "FeatureKind",
    "LearnedItem",
    "LearningState",
    "Signal",
    "describe",
    "example_of",
    "forget_dismissal",
    "learned_boosts",
    "record",
    "remove_item",
]

Signal = Literal["save", "inmail", "export", "dismiss", "passed"]
DismissReason = Literal["title", "location", "skills", "seniority", "other"]
Direction = Literal["more", "less"]

SIGNALS: tuple[Signal, ...] = get_args(Signal)
POSITIVE_SIGNALS: frozenset[str] = frozenset(("save", "inmail", "export"))
DISMISS_REASONS: tuple[DismissReason, ...] = get_args(DismissReason)

MAX_EXAMPLES = 300  # the newest examples a pipeline keeps
VAGUE_WEIGHT = 0.5  # an "other" (or reasonless) dismissal: a negative on every kind, at this weight
PASSED_WEIGHT = 0.2  # shown on a worked page and passed over: a weak negative on every kind
MIN_LOG_WEIGHT = 0.15  # smaller weights (factors within ×0.86–×1.16) only break ties: left out
MAX_FACTORS = 32  # the strongest factors the query gets (query.MAX_LEARNED_FACTORS): the body stays bounded
YEARS_THRESHOLDS = (2, 4, 6, 8, 10, 12, 15, 20, 25)
DISTANCE_KM = (10, 20, 30, 40, 60, 100, 250)
_FORMAT_VERSION = 2


@dataclass(frozen=True, slots=True)
class Example:
    """What learning keeps of one candidate the recruiter acted on (or passed over), as it was then."""

    candidate_id: str
    signal: Signal
    reason: DismissReason | None = None
    occupation_codes: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    title_norm: str | None = None
    company: str | None = None
    seniority: str | None = None
    years: float | None = None
    geo: tuple[float, float] | None = None
    open_to_work: bool = False
    open_to_remote: bool = False

    @property
    def positive(self) -> bool:
        return self.signal in POSITIVE_SIGNALS

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.candidate_id, "s": self.signal}
        optional = {"r": self.reason, "o": list(self.occupation_codes), "k": list(self.skills), "t": self.title_norm,
                    "c": self.company, "n": self.seniority, "y": self.years,
                    "g": list(self.geo) if self.geo else None, "w": self.open_to_work, "m": self.open_to_remote}
        data.update({key: value for key, value in optional.items() if value not in (None, [], False)})
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Example:
        geo = data.get("g")
        signal = data["s"]
        reason = data.get("r")
        if signal not in SIGNALS or (reason is not None and reason not in DISMISS_REASONS):
            raise ValueError(f"not an example: {data!r}")
        return cls(candidate_id=str(data["id"]), signal=signal, reason=reason,
                   occupation_codes=tuple(data.get("o", ())), skills=tuple(data.get("k", ())),
                   title_norm=data.get("t"), company=data.get("c"), seniority=data.get("n"),
                   years=float(data["y"]) if data.get("y") is not None else None,
                   geo=(float(geo[0]), float(geo[1])) if geo else None,
                   open_to_work=bool(data.get("w")), open_to_remote=bool(data.get("m")))


@dataclass(frozen=True, slots=True)
class LearningState:
    """A pipeline's examples and the learned items the recruiter removed ("skills:kubernetes"); never mutated."""

    examples: tuple[Example, ...] = ()
    removed: frozenset[str] = frozenset()

    @property
    def positives(self) -> int:
        return sum(example.positive for example in self.examples)

    @property
    def dismissals(self) -> int:
        return sum(example.signal == "dismiss" for example in self.examples)

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able dict."""
        data: dict[str, Any] = {"v": _FORMAT_VERSION, "examples": [example.to_dict() for example in self.examples]}
        if self.removed:
            data["removed"] = sorted(self.removed)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LearningState:
        """The inverse of ``to_dict``. The first stored form (per-key counts, no examples) cannot be refitted:
        it reads as nothing learned."""
        if not data or int(data.get("v", 1)) < _FORMAT_VERSION:
            return cls()
        try:
            if int(data["v"]) != _FORMAT_VERSION:
                raise ValueError(f"unknown format version {data.get('v')!r}")
            examples = tuple(Example.from_dict(item) for item in data.get("examples") or ())
            return cls(examples=examples, removed=frozenset(str(key) for key in data.get("removed") or ()))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a stored learning state: {error!r}") from error


def example_of(source: Mapping[str, Any], *, signal: Signal, reason: DismissReason | None = None) -> Example:
    """What learning keeps of a candidate document's ``_source`` and what was done to them."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}")
    if reason is not None and (signal != "dismiss" or reason not in DISMISS_REASONS):
        raise ValueError(f"reason {reason!r} does not go with signal {signal!r}")
    location = source.get("location") or {}
    geo = location.get("geo") if isinstance(location, Mapping) else None
    title = _text(source.get("title"))
    years = source.get("years_experience")
    return Example(
        candidate_id=str(source.get("candidate_id", "")),
        signal=signal,
        reason=reason,
        occupation_codes=_unique(source.get("occupation_codes")),
        skills=tuple(dict.fromkeys(filter(None, (normalize_skill(s) for s in _unique(source.get("skills")))))),
        title_norm=(normalize_title(title) or None) if title else None,
        company=_text(source.get("company")),
        seniority=_text(source.get("seniority")),
        years=float(years) if isinstance(years, int | float) and not isinstance(years, bool) else None,
        geo=(float(geo["lat"]), float(geo["lon"])) if isinstance(geo, Mapping) and "lat" in geo else None,
        open_to_work=source.get("open_to_work") is True,
        open_to_remote=source.get("open_to_remote") is True,
    )


def record(state: LearningState, *, example: Example) -> LearningState:
    """The state after one more example; a candidate's newer example replaces an older one."""
    kept = [old for old in state.examples if old.candidate_id != example.candidate_id or not example.candidate_id]
    return replace(state, examples=(*kept, example)[-MAX_EXAMPLES:])


def forget_dismissal(state: LearningState, *, candidate_id: str) -> LearningState:
    """The state without a candidate's dismissal (an undo)."""
    return replace(state, examples=tuple(example for example in state.examples
                                         if not (example.candidate_id == candidate_id and example.signal == "dismiss")))


def remove_item(state: LearningState, *, kind: str, key: str) -> LearningState:
    """The state with one learned item removed for good (until a reset)."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown kind of learned item {kind!r}")
    return replace(state, removed=state.removed | {f"{kind}:{key}"})


# -- the kinds of learned features -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureKind:
    """One kind of learned feature: its keys on an example, its filter in the index, its words, its prior."""

    name: str
    blamed_by: frozenset[DismissReason]  # a dismissal with one of these reasons is a full negative for the kind
    keys: Callable[[Example, Understanding], tuple[str, ...]]
    clause: Callable[[str, Understanding], dict[str, Any] | None]
    words: Callable[[str, Direction, str], str]  # (key, direction, label) → "closer to Austin (within 25 km)"
    prior_sd: float = 1.0  # the Gaussian prior's spread on a weight: smaller shrinks harder
    min_support: int = 2  # examples on the weight's side that have the key
    can_lower: bool = True
    can_raise: bool = True
    ordinal: bool = False  # keys are thresholds on one scale: the recruiter sees its strongest one only


def _years_keys(example: Example, _: Understanding) -> tuple[str, ...]:
    if example.years is None:
        return ()
    return tuple(f"{threshold}+" for threshold in YEARS_THRESHOLDS if example.years >= threshold)


def _years_clause(key: str, _: Understanding) -> dict[str, Any] | None:
    return {"range": {"years_experience": {"gte": float(key.rstrip("+"))}}}


def _years_words(key: str, direction: Direction, _: str) -> str:
    return f"more experienced ({key} years)" if direction == "more" else f"less experienced (under {key[:-1]} years)"


def _thresholds_km(understanding: Understanding) -> tuple[float, ...]:
    radii = {place.radius_km for place in understanding.locations if place.kind != "country"}
    return tuple(sorted({float(km) for km in DISTANCE_KM} | radii))


def _distance_keys(example: Example, understanding: Understanding) -> tuple[str, ...]:
    places = [place for place in understanding.locations if place.kind != "country"]
    if example.geo is None or not places:
        return ()
    nearest = min(haversine_km(example.geo[0], example.geo[1], place.lat, place.lon) for place in places)
    return tuple(_km(km) for km in _thresholds_km(understanding) if nearest <= km)


def _distance_clause(key: str, understanding: Understanding) -> dict[str, Any] | None:
    places = [place for place in understanding.locations if place.kind != "country"]
    if not places:
        return None
    near = [{"geo_distance": {"distance": f"{key}km", "location.geo": {"lat": p.lat, "lon": p.lon}}} for p in places]
    return near[0] if len(near) == 1 else {"bool": {"should": near, "minimum_should_match": 1}}


def _term(field_name: str, value: Any) -> dict[str, Any]:
    return {"term": {field_name: value}}


FEATURE_KINDS: Mapping[str, FeatureKind] = {kind.name: kind for kind in (
    FeatureKind(
        name="skills", blamed_by=frozenset(("skills",)),
        keys=lambda example, _: example.skills,
        clause=lambda key, _: _term("skills", key),
        words=lambda key, direction, label: label,
        prior_sd=1.0,
    ),
    FeatureKind(
        name="occupation_codes", blamed_by=frozenset(("title",)),
        keys=lambda example, _: example.occupation_codes,
        clause=lambda key, _: _term("occupation_codes", key),
        words=lambda key, direction, label: f"{label} titles",
        prior_sd=1.0,
    ),
    FeatureKind(
        name="title_words", blamed_by=frozenset(("title",)),
        keys=lambda example, _: tuple(dict.fromkeys((example.title_norm or "").split())),
        clause=lambda key, _: _term("title_norm", key),
        words=lambda key, direction, label: f"“{label}” in the title",
        prior_sd=0.7,
    ),
    FeatureKind(
        name="companies", blamed_by=frozenset(),
        keys=lambda example, _: (example.company.casefold(),) if example.company else (),
        clause=lambda key, _: _term("company.keyword", key),  # the field's normalizer lowercases
        words=lambda key, direction, label: f"people at {label}",
        prior_sd=1.0,
    ),
    FeatureKind(
        name="seniority", blamed_by=frozenset(("seniority",)),
        keys=lambda example, _: (example.seniority,) if example.seniority else (),
        clause=lambda key, _: _term("seniority", key),
        words=lambda key, direction, label: f"{label}-level people",
        prior_sd=0.7,
    ),
    FeatureKind(
        name="years", blamed_by=frozenset(("seniority",)),
        keys=_years_keys, clause=_years_clause, words=_years_words,
        prior_sd=0.7, ordinal=True,
    ),
    FeatureKind(
        name="distance", blamed_by=frozenset(("location",)),
        keys=_distance_keys, clause=_distance_clause,
        words=lambda key, direction, label: f"closer to {label} (within {key} km)",
        prior_sd=0.8, can_lower=False, ordinal=True,
    ),
    FeatureKind(
        name="open_to_work", blamed_by=frozenset(),
        keys=lambda example, _: ("yes",) if example.open_to_work else (),
        clause=lambda key, _: _term("open_to_work", True),
        words=lambda key, direction, label: "people open to work",
        prior_sd=0.8, can_lower=False,
    ),
    FeatureKind(
        name="open_to_remote", blamed_by=frozenset(("location",)),
        keys=lambda example, _: ("yes",) if example.open_to_remote else (),
        clause=lambda key, _: _term("open_to_remote", True),
        words=lambda key, direction, label: "people open to remote work",
        prior_sd=0.8, can_lower=False,
    ),
)}


# -- the model -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Weight:
    kind: str
    key: str
    log_weight: float
    positives_with: int  # positive examples that have the key
    positives: int
    negatives_with: int  # full negatives (dismissals blamed on the kind, and vague ones) that have the key
    negatives: int


def fit(state: LearningState, understanding: Understanding) -> list[_Weight]:
    """Every kind's weights that have evidence, strongest first."""
    weights: list[_Weight] = []
    for kind in FEATURE_KINDS.values():
        weights += _fit_kind(kind, state, understanding)
    weights.sort(key=lambda weight: (-abs(weight.log_weight), weight.kind, weight.key))
    return weights


def _fit_kind(kind: FeatureKind, state: LearningState, understanding: Understanding) -> list[_Weight]:
    rows: list[tuple[tuple[str, ...], float, float, bool]] = []  # keys, label, weight, counts as a full negative
    for example in state.examples:
        keys = kind.keys(example, understanding)
        if example.positive:
            rows.append((keys, 1.0, 1.0, False))
        elif example.signal == "dismiss":
            if example.reason in kind.blamed_by:
                rows.append((keys, 0.0, 1.0, True))
            elif example.reason in (None, "other"):
                rows.append((keys, 0.0, VAGUE_WEIGHT, True))
        else:
            rows.append((keys, 0.0, PASSED_WEIGHT, False))
    positive_weight = sum(w for _, y, w, _ in rows if y)
    negative_weight = sum(w for _, y, w, _ in rows if not y)
    if positive_weight < 1.0 or negative_weight < 1.0 or not any(full for *_, full in rows):
        # Nothing to tell apart, or only candidates passed over: nobody said this kind was what was wrong.
        return []
    vocabulary = sorted({key for keys, *_ in rows for key in keys if f"{kind.name}:{key}" not in state.removed})
    if not vocabulary:
        return []
    column = {key: index for index, key in enumerate(vocabulary)}
    x = np.zeros((len(rows), len(vocabulary)))
    for row, (keys, *_) in enumerate(rows):
        for key in keys:
            if key in column:
                x[row, column[key]] = 1.0
    y = np.array([label for _, label, _, _ in rows])
    sample = np.array([weight for _, _, weight, _ in rows])
    coefficients = _logistic_map(x, y, sample, prior_sd=kind.prior_sd)
    positive_rows = y == 1.0
    full_negative = np.array([full for *_, full in rows])
    with_pos = x[positive_rows].sum(axis=0)
    with_neg = x[full_negative].sum(axis=0)
    found: list[_Weight] = []
    for index, key in enumerate(vocabulary):
        log_weight = float(coefficients[index])
        if abs(log_weight) < MIN_LOG_WEIGHT:
            continue
        if log_weight > 0 and (not kind.can_raise or with_pos[index] < kind.min_support):
            continue
        if log_weight < 0 and (not kind.can_lower or with_neg[index] < kind.min_support):
            continue
        found.append(_Weight(kind.name, key, round(log_weight, 4), int(with_pos[index]), int(positive_rows.sum()),
                             int(with_neg[index]), int(full_negative.sum())))
    return found


def _logistic_map(x: np.ndarray, y: np.ndarray, sample: np.ndarray, *, prior_sd: float) -> np.ndarray:
    """The most probable weights of a logistic regression with an intercept (unpenalised) and a N(0, prior_sd²)
    prior on every other weight, given weighted examples; Newton's method (a few dozen features at most)."""
    rows, columns = x.shape
    design = np.hstack([np.ones((rows, 1)), x])
    penalty = np.full(columns + 1, 1.0 / prior_sd**2)
    penalty[0] = 1e-4  # the intercept is nearly free: it absorbs what every example shares
    beta = np.zeros(columns + 1)
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (sample * (y - p)) - penalty * beta
        hessian = (design.T * (sample * p * (1 - p))) @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if float(np.max(np.abs(step))) < 1e-6:
            break
    return beta[1:]


# -- into the query --------------------------------------------------------------------------------------------------


def learned_boosts(state: LearningState, *, understanding: Understanding) -> LearnedBoosts | None:
    """The query factors of what was learned; None when nothing was."""
    factors: list[LearnedFactor] = []
    for weight in fit(state, understanding)[:MAX_FACTORS]:
        clause = FEATURE_KINDS[weight.kind].clause(weight.key, understanding)
        if clause is None:
            continue
        factor = round(min(MAX_BOOST, max(MIN_BOOST, math.exp(weight.log_weight))), 4)
        factors.append(LearnedFactor(name=f"{weight.kind}:{weight.key}", filter=clause, weight=factor))
    return LearnedBoosts(factors=tuple(factors)) if factors else None


# -- words -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LearnedItem:
    """One learned preference as the recruiter sees it; ``text`` is the whole sentence."""

    kind: str
    key: str
    label: str
    direction: Direction
    signals: int  # examples on the item's side that have it
    weight: float  # the factor it applies
    text: str
    evidence: Mapping[str, int] = field(default_factory=dict)


def describe(
    state: LearningState,
    *,
    understanding: Understanding,
    label_of: Callable[[str, str], str] | None = None,
) -> list[LearnedItem]:
    """What the ranking learned, in recruiter words, strongest first; one item per ordinal kind.

    ``label_of(kind, key)`` names a key ("15-1252.00" → "Software Developers"); by default the key itself.
    """
    items: list[LearnedItem] = []
    shown_ordinal: set[str] = set()
    nouns = _nouns(state)
    for weight in fit(state, understanding)[:MAX_FACTORS]:  # what the query applies, and only that
        kind = FEATURE_KINDS[weight.kind]
        if kind.ordinal:
            if weight.kind in shown_ordinal:
                continue
            shown_ordinal.add(weight.kind)
        direction: Direction = "more" if weight.log_weight > 0 else "less"
        if weight.kind == "distance":
            label = _nearest_place_name(understanding)
        elif weight.kind == "companies":  # keys are case-folded: show the spelling the candidates had
            label = next((e.company for e in state.examples if e.company and e.company.casefold() == weight.key),
                         weight.key)
        elif label_of is not None:
            label = label_of(weight.kind, weight.key)
        else:
            label = weight.key
        phrase = kind.words(weight.key, direction, label)
        positive_noun = nouns[weight.positives != 1]
        negative_noun = "dismissal" if weight.negatives == 1 else "dismissals"
        have = "has it" if weight.positives_with == 1 and weight.positives == 1 else "have it"
        text = (f"{direction} like: {phrase} ({weight.positives_with} of {weight.positives} {positive_noun} {have}, "
                f"{weight.negatives_with} of {weight.negatives} {negative_noun})")
        signals = weight.positives_with if direction == "more" else weight.negatives_with
        items.append(LearnedItem(
            kind=weight.kind, key=weight.key, label=phrase, direction=direction, signals=signals,
            weight=round(math.exp(weight.log_weight), 4), text=text,
            evidence={"positives_with": weight.positives_with, "positives": weight.positives,
                      "negatives_with": weight.negatives_with, "negatives": weight.negatives},
        ))
    return items


def _nouns(state: LearningState) -> tuple[str, str]:
    """("save", "saves") or ("save or InMail", "saves or InMails"): the positive signals this pipeline had."""
    names = {"save": ("save", "saves"), "inmail": ("InMail", "InMails"), "export": ("export", "exports")}
    used = [signal for signal in ("save", "inmail", "export") if any(e.signal == signal for e in state.examples)]
    used = used or ["save"]
    return " or ".join(names[s][0] for s in used), " or ".join(names[s][1] for s in used)


def _nearest_place_name(understanding: Understanding) -> str:
    names = [place.name for place in understanding.locations if place.kind != "country"]
    return " or ".join(dict.fromkeys(names)) or "the pipeline's places"


def _km(km: float) -> str:
    return f"{km:.1f}".rstrip("0").rstrip(".")


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None


def _unique(values: Any) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Sequence):
        return ()
    return tuple(dict.fromkeys(text for text in (_text(value) for value in values) if text))
