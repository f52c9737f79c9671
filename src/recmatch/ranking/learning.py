"""PURE: a pipeline's hiring signals → feedback counts → bounded, smoothed learned boosts, in recruiter words. No I/O.

Flow (the API keeps ``FeedbackCounts.to_dict()`` in the pipeline document's ``learned`` field)::

    features_of(candidate _source)  →  record(counts, features=…, signal=…, reason=…)  →  new counts
    learned_boosts(counts, …)        →  LearnedBoosts for query.build_query (None: nothing learned yet)
    describe(counts, …)              →  "more like: Kubernetes (4 saves)", "less like: Sales Managers titles (2 …)"

Save, InMail and export are positive: every feature of the candidate gains a positive. A dismissal is negative only
for what its reason names (title → occupation codes and the exact normalised title, location → region and distance,
skills → skills, seniority → seniority); "other" (or no reason) is a vague negative on every feature, worth
``VAGUE_WEIGHT`` of a targeted one. A candidate whose title maps to several occupations spreads one signal over them:
we cannot tell which reading the recruiter meant — except that a dismissal for title leaves out the readings the
recruiter already saved people under (they wanted that reading, so the other ones are what they turned down).

A key's weight is its smoothed log-odds ``log((p + PSEUDO) / (n + PSEUDO))`` times its kind's ``scale``, then
``exp``, clamped to [MIN_BOOST, MAX_BOOST]. PSEUDO pseudo-signals on each side keep one signal well away from the
bounds, and a key needs ``min_evidence`` signals before it moves at all. The query multiplies every matching boost,
so kinds a candidate has many of (skills) or that say little on their own (company, seniority) get a small scale:
they order candidates the occupation boost leaves level rather than overturn the ranking. Regions are only ever
lowered, never for a region with a positive in it, and never for the pipeline's own places (``home_regions``): the
pipeline's radius already says how far is too far, a dismissal "location" says which far places are not wanted.
Titles, like regions, are only ever lowered, and a positive protects one. Each dismissal for location also lowers
``beyond_radius``, the factor of every candidate outside the pipeline's radius (who is not remote when the pipeline
accepts remote): the proximity decay keeps a candidate just past the radius nearly level with one inside it, and
location dismissals say this recruiter means the radius. Its weight is ``exp(-FAR_SCALE · log((n + PSEUDO) /
PSEUDO))`` for n location dismissals, at least MIN_BOOST (one: × 0.74, three: × 0.5).
A tenant-wide prior (the sum of other pipelines' counts, ``merged``) adds at most ``PRIOR_SIGNALS`` signals' worth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

from recmatch.ranking.query import MAX_BOOST, MIN_BOOST, LearnedBoosts
from recmatch.ranking.understand import Understanding
from recmatch.text.normalize import normalize_title

__all__ = [
    "KINDS",
    "PSEUDO",
    "VAGUE_WEIGHT",
    "CandidateFeatures",
    "DismissReason",
    "FeedbackCounts",
    "KeyCounts",
    "Kind",
    "LearnedItem",
    "Signal",
    "describe",
    "features_of",
    "home_regions",
    "learned_boosts",
    "merged",
    "record",
]

Signal = Literal["save", "inmail", "export", "dismiss"]
DismissReason = Literal["title", "location", "skills", "seniority", "other"]
Kind = Literal["occupation_codes", "skills", "companies", "seniority", "regions", "titles"]
Direction = Literal["more", "less"]

SIGNALS: tuple[Signal, ...] = get_args(Signal)
POSITIVE_SIGNALS: frozenset[Signal] = frozenset(("save", "inmail", "export"))
DISMISS_REASONS: tuple[DismissReason, ...] = get_args(DismissReason)
KINDS: tuple[Kind, ...] = get_args(Kind)

# What a dismissal reason says the recruiter disliked.
REASON_KINDS: Mapping[DismissReason, tuple[Kind, ...]] = {
    "title": ("occupation_codes", "titles"),
    "location": ("regions",),
    "skills": ("skills",),
    "seniority": ("seniority",),
    "other": KINDS,
}
VAGUE_WEIGHT = 0.25  # an "other" dismissal counts this much of a negative on every feature
PSEUDO = 2.0  # pseudo-signals on each side of a key's log-odds
PRIOR_SIGNALS = 2.0  # a tenant-wide prior weighs at most this many of the pipeline's own signals
SHOWN_CHANGE = 0.05  # describe() leaves out weights closer to 1 than this: they only break ties
FAR_SCALE = 0.75  # multiplies the smoothed log-odds of location dismissals for ``beyond_radius``
_MIN_CHANGE = 0.005  # learned_boosts() leaves out weights closer to 1 than this
_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class _KindModel:
    scale: float  # multiplies the smoothed log-odds
    min_evidence: float  # signals on a key before it gets a weight
    max_keys: int  # kept in the stored counts; the weakest go first
    can_raise: bool = True  # False: only lowered, and a positive protects the key (regions)


# Tuned on the seed-2 pool of scripts/eval_feedback.py; reported on seed 1.
_MODELS: Mapping[Kind, _KindModel] = {
    "occupation_codes": _KindModel(scale=0.5, min_evidence=1.0, max_keys=40),
    # Divided by √(skills a positive candidate brings), since every matching skill multiplies.
    "skills": _KindModel(scale=0.3, min_evidence=1.0, max_keys=80),
    "companies": _KindModel(scale=0.2, min_evidence=1.0, max_keys=30),
    "seniority": _KindModel(scale=0.2, min_evidence=1.0, max_keys=8),
    "regions": _KindModel(scale=0.25, min_evidence=2.0, max_keys=30, can_raise=False),
    # The exact (normalised) title of a candidate dismissed for title: one dismissal × 0.67, two × 0.5.
    "titles": _KindModel(scale=1.0, min_evidence=1.0, max_keys=30, can_raise=False),
}

_PHRASES: Mapping[Kind, str] = {
    "occupation_codes": "{} titles",
    "skills": "{}",
    "companies": "people at {}",
    "seniority": "{}-level people",
    "regions": "people in {}",
    "titles": "people titled “{}”",
}
_NOUNS: Mapping[Signal, tuple[str, str]] = {
    "save": ("save", "saves"),
    "inmail": ("InMail", "InMails"),
    "export": ("export", "exports"),
    "dismiss": ("dismissal", "dismissals"),
}


@dataclass(frozen=True, slots=True)
class CandidateFeatures:
    """What learning reads of a candidate: the keys its boosts are made of."""

    occupation_codes: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    company: str | None = None
    seniority: str | None = None
    country: str | None = None
    region: str | None = None
    title_norm: str | None = None  # normalised current title ("senior sales engineer" → "sales engineer")

    def keys(self, kind: Kind) -> tuple[str, ...]:
        """This candidate's keys of one kind (a region key is "US-TX" when the region is known, else "US")."""
        if kind == "occupation_codes":
            return self.occupation_codes
        if kind == "skills":
            return self.skills
        if kind == "companies":
            return (self.company,) if self.company else ()
        if kind == "seniority":
            return (self.seniority,) if self.seniority else ()
        if kind == "titles":
            return (self.title_norm,) if self.title_norm else ()
        if not self.country:
            return ()
        return (f"{self.country}-{self.region}",) if self.region else (self.country,)


def features_of(source: Mapping[str, Any]) -> CandidateFeatures:
    """The features of a candidate document's ``_source`` (fields as ``recmatch.indexing.documents`` writes them)."""
    location = source.get("location") or {}
    country = _text(location.get("country")) if isinstance(location, Mapping) else None
    title = _text(source.get("title"))
    return CandidateFeatures(
        occupation_codes=_unique(source.get("occupation_codes")),
        skills=_unique(source.get("skills")),
        company=_text(source.get("company")),
        seniority=_text(source.get("seniority")),
        country=country.upper() if country else None,
        region=_text(location.get("region")) if country else None,
        title_norm=(normalize_title(title) or None) if title else None,
    )


class KeyCounts(NamedTuple):
    """Signals on one key: their weight as evidence, and how many signals (for recruiter words)."""

    positives: float = 0.0  # a candidate with k occupation codes adds 1/k to each
    negatives: float = 0.0  # a vague ("other") dismissal adds VAGUE_WEIGHT
    positive_signals: int = 0
    negative_signals: int = 0

    @property
    def evidence(self) -> float:
        """How much was seen about this key."""
        return self.positives + self.negatives


_EMPTY_KEY = KeyCounts()


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    """A pipeline's (or a tenant's) signals per feature kind and key, and totals per signal; never mutated."""

    occupation_codes: Mapping[str, KeyCounts] = field(default_factory=dict)
    skills: Mapping[str, KeyCounts] = field(default_factory=dict)
    companies: Mapping[str, KeyCounts] = field(default_factory=dict)
    seniority: Mapping[str, KeyCounts] = field(default_factory=dict)
    regions: Mapping[str, KeyCounts] = field(default_factory=dict)
    titles: Mapping[str, KeyCounts] = field(default_factory=dict)
    signals: Mapping[Signal, int] = field(default_factory=dict)
    skills_seen: int = 0  # skills over all positive candidates, for the mean one brings
    reasons: Mapping[DismissReason, int] = field(default_factory=dict)  # dismissals per reason given

    def of(self, kind: Kind) -> Mapping[str, KeyCounts]:
        """The counts of one kind."""
        table: Mapping[str, KeyCounts] = getattr(self, kind)
        return table

    @property
    def positives(self) -> int:
        """Positive signals recorded (save, InMail, export)."""
        return sum(self.signals.get(signal, 0) for signal in POSITIVE_SIGNALS)

    @property
    def negatives(self) -> int:
        """Dismissals recorded."""
        return self.signals.get("dismiss", 0)

    @property
    def skills_per_positive(self) -> float:
        """The mean number of skills of a positive candidate (1 when none was seen)."""
        return max(1.0, self.skills_seen / self.positives) if self.positives else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able dict: key → [positive signals, negative signals] when those are the evidence as well,
        else [positives, negatives, positive signals, negative signals]."""
        data: dict[str, Any] = {"v": _FORMAT_VERSION, "signals": {s: n for s, n in self.signals.items() if n}}
        if self.skills_seen:
            data["skills_seen"] = self.skills_seen
        if any(self.reasons.values()):
            data["reasons"] = {reason: n for reason, n in self.reasons.items() if n}
        for kind in KINDS:
            table = self.of(kind)
            if table:
                data[kind] = {key: _compact(counts) for key, counts in table.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackCounts:
        """The inverse of ``to_dict``; ValueError when the dict is not one."""
        try:
            if int(data.get("v", _FORMAT_VERSION)) != _FORMAT_VERSION:
                raise ValueError(f"unknown format version {data.get('v')!r}")
            signals: dict[Signal, int] = {
                signal: int(n) for signal, n in (data.get("signals") or {}).items() if signal in SIGNALS and int(n) > 0
            }
            tables = {
                kind: {str(key): _expand(values) for key, values in (data.get(kind) or {}).items()} for kind in KINDS
            }
            reasons: dict[DismissReason, int] = {
                reason: int(n) for reason, n in (data.get("reasons") or {}).items()
                if reason in DISMISS_REASONS and int(n) > 0
            }
            return cls(**tables, signals=signals, skills_seen=int(data.get("skills_seen", 0)), reasons=reasons)
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not stored feedback counts: {error!r}") from error


@dataclass(frozen=True, slots=True)
class LearnedItem:
    """One learned preference as the recruiter sees it; ``text`` is the whole sentence."""

    kind: Kind | Literal["beyond_radius"]
    key: str
    label: str
    direction: Direction
    signals: int
    weight: float
    text: str


def home_regions(understanding: Understanding) -> frozenset[str]:
    """The region keys of a pipeline's own places ("US", "US-TX"), for ``learned_boosts`` and ``describe``."""
    keys = {place.country.upper() for place in understanding.locations if place.country}
    keys |= {f"{place.country.upper()}-{place.region}" for place in understanding.locations
             if place.country and place.region}
    return frozenset(keys)


def record(
    counts: FeedbackCounts,
    *,
    features: CandidateFeatures,
    signal: Signal,
    reason: DismissReason | None = None,
) -> FeedbackCounts:
    """The counts after one signal on a candidate with these features (a reason goes with dismissals only)."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}")
    if reason is not None and (signal != "dismiss" or reason not in DISMISS_REASONS):
        raise ValueError(f"reason {reason!r} does not go with signal {signal!r}")
    positive = signal in POSITIVE_SIGNALS
    why: DismissReason = reason or "other"
    weight = 1.0 if positive or why != "other" else VAGUE_WEIGHT
    tables: dict[Kind, Mapping[str, KeyCounts]] = {}
    for kind in KINDS:
        if not positive and kind not in REASON_KINDS[why]:
            continue
        table = dict(counts.of(kind))
        keys = _keys_in(table, kind, features.keys(kind))
        if not keys:
            continue
        if not positive and kind == "occupation_codes":
            # An ambiguous title: the readings the recruiter saved people under are not the ones they dismissed.
            keys = [key for key in keys if not table.get(key, _EMPTY_KEY).positives] or keys
        share = weight / len(keys) if kind == "occupation_codes" else weight
        for key in keys:
            before = table.pop(key, _EMPTY_KEY)  # re-inserted last: the most recently touched key
            table[key] = KeyCounts(  # rounded as stored, so that counts survive a JSON round trip unchanged
                positives=round(before.positives + (share if positive else 0.0), 4),
                negatives=round(before.negatives + (0.0 if positive else share), 4),
                positive_signals=before.positive_signals + positive,
                negative_signals=before.negative_signals + (not positive),
            )
        tables[kind] = _bounded_keys(table, _MODELS[kind].max_keys)
    signals = dict(counts.signals)
    signals[signal] = signals.get(signal, 0) + 1
    reasons = dict(counts.reasons)
    if not positive:
        reasons[why] = reasons.get(why, 0) + 1
    return FeedbackCounts(
        **{kind: tables.get(kind, counts.of(kind)) for kind in KINDS},
        signals=signals,
        skills_seen=counts.skills_seen + (len(set(features.skills)) if positive else 0),
        reasons=reasons,
    )


def merged(all_counts: Iterable[FeedbackCounts]) -> FeedbackCounts:
    """The sum of several pipelines' counts (a tenant-wide prior), bounded like any counts."""
    tables: dict[Kind, dict[str, KeyCounts]] = {kind: {} for kind in KINDS}
    signals: dict[Signal, int] = {}
    reasons: dict[DismissReason, int] = {}
    skills_seen = 0
    for counts in all_counts:
        for kind in KINDS:
            table = tables[kind]
            for key, added in counts.of(kind).items():
                before = table.get(key, _EMPTY_KEY)
                table[key] = KeyCounts(
                    round(before.positives + added.positives, 4),
                    round(before.negatives + added.negatives, 4),
                    before.positive_signals + added.positive_signals,
                    before.negative_signals + added.negative_signals,
                )
        for signal, n in counts.signals.items():
            signals[signal] = signals.get(signal, 0) + n
        for reason, n in counts.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        skills_seen += counts.skills_seen
    return FeedbackCounts(
        **{kind: _bounded_keys(tables[kind], _MODELS[kind].max_keys) for kind in KINDS},
        signals=signals,
        skills_seen=skills_seen,
        reasons=reasons,
    )


def learned_boosts(
    counts: FeedbackCounts, *, prior: FeedbackCounts | None = None, home_regions: Collection[str] = ()
) -> LearnedBoosts | None:
    """Bounded, smoothed factors for the query builder; None when nothing was learned.

    ``home_regions``: the pipeline's own places ("US", "US-TX"), never lowered.
    """
    weights = {kind: _weights(counts, prior, kind, min_change=_MIN_CHANGE) for kind in KINDS}
    home = {region.upper() for region in home_regions}
    weights["regions"] = {key: weight for key, weight in weights["regions"].items() if key.upper() not in home}
    beyond_radius = _beyond_radius(counts)
    if not any(weights.values()) and beyond_radius == 1.0:
        return None
    return LearnedBoosts(
        occupation_codes=weights["occupation_codes"],
        skills=weights["skills"],
        companies=weights["companies"],
        seniority=weights["seniority"],
        regions=weights["regions"],
        titles=weights["titles"],
        beyond_radius=beyond_radius,
    )


def describe(
    counts: FeedbackCounts,
    *,
    label_of: Callable[[Kind, str], str] | None = None,
    home_regions: Collection[str] = (),
) -> list[LearnedItem]:
    """What the ranking learned from this pipeline's signals, in recruiter words, strongest first.

    ``label_of(kind, key)`` names a key ("15-1252.00" → "Software Developers"); by default the key itself.
    """
    home = {region.upper() for region in home_regions}
    items: list[LearnedItem] = []
    for kind in KINDS:
        table = counts.of(kind)
        for key, weight in _weights(counts, None, kind, min_change=SHOWN_CHANGE).items():
            if kind == "regions" and key.upper() in home:
                continue
            direction: Direction = "more" if weight > 1 else "less"
            own = table[key]
            signals = own.positive_signals if direction == "more" else own.negative_signals
            label = _PHRASES[kind].format(label_of(kind, key) if label_of is not None else key)
            noun = _noun(counts, direction=direction, plural=signals != 1)
            items.append(LearnedItem(
                kind=kind, key=key, label=label, direction=direction, signals=signals, weight=weight,
                text=f"{direction} like: {label} ({signals} {noun})",
            ))
    far = _beyond_radius(counts)
    if 1.0 - far >= SHOWN_CHANGE:
        signals = counts.reasons.get("location", 0)
        label = "people outside the search radius"
        noun = "location dismissal" if signals == 1 else "location dismissals"
        items.append(LearnedItem(kind="beyond_radius", key="beyond_radius", label=label, direction="less",
                                 signals=signals, weight=far, text=f"less like: {label} ({signals} {noun})"))
    items.sort(key=lambda item: (-abs(math.log(item.weight)), -item.signals, item.kind, item.key))
    return items


# -- weights ---------------------------------------------------------------------------------------------------------


def _weights(
    counts: FeedbackCounts, prior: FeedbackCounts | None, kind: Kind, *, min_change: float
) -> dict[str, float]:
    model = _MODELS[kind]
    table = counts.of(kind)
    prior_table: Mapping[str, KeyCounts] = {}
    prior_share = 0.0
    if prior is not None and prior.positives + prior.negatives:
        prior_table = prior.of(kind)
        prior_share = min(1.0, PRIOR_SIGNALS / (prior.positives + prior.negatives))
    scale = model.scale
    if kind == "skills":
        scale /= math.sqrt(counts.skills_per_positive)
    weights: dict[str, float] = {}
    for key in sorted(set(table) | set(prior_table)):
        own = table.get(key, _EMPTY_KEY)
        borrowed = prior_table.get(key, _EMPTY_KEY)
        positives = own.positives + prior_share * borrowed.positives
        negatives = own.negatives + prior_share * borrowed.negatives
        if positives + negatives < model.min_evidence or (not model.can_raise and positives > 0):
            continue
        log_odds = math.log((positives + PSEUDO) / (negatives + PSEUDO))
        ceiling = MAX_BOOST if model.can_raise else 1.0
        weight = round(min(ceiling, max(MIN_BOOST, math.exp(scale * log_odds))), 4)
        if abs(weight - 1.0) >= min_change:
            weights[key] = weight
    return weights


def _beyond_radius(counts: FeedbackCounts) -> float:
    """The factor of candidates outside the pipeline's radius: lower with each dismissal for location."""
    far = counts.reasons.get("location", 0)
    weight = round(max(MIN_BOOST, math.exp(-FAR_SCALE * math.log((far + PSEUDO) / PSEUDO))), 4)
    return weight if 1.0 - weight >= _MIN_CHANGE else 1.0


def _keys_in(table: Mapping[str, KeyCounts], kind: Kind, keys: Iterable[str]) -> list[str]:
    """The candidate's keys, once each; a company already counted under another casing keeps that spelling."""
    unique = list(dict.fromkeys(keys))
    if kind != "companies":
        return unique
    known = {key.casefold(): key for key in table}
    return list(dict.fromkeys(known.get(key.casefold(), key) for key in unique))


def _bounded_keys(table: dict[str, KeyCounts], limit: int) -> dict[str, KeyCounts]:
    """At most ``limit`` keys: the least evidence goes first, and among equals the least recently touched."""
    if len(table) <= limit:
        return table
    order = {key: position for position, key in enumerate(table)}
    kept = set(sorted(table, key=lambda key: (-table[key].evidence, -order[key]))[:limit])
    return {key: counts for key, counts in table.items() if key in kept}


def _compact(counts: KeyCounts) -> list[float | int]:
    if counts.positives == counts.positive_signals and counts.negatives == counts.negative_signals:
        return [counts.positive_signals, counts.negative_signals]
    return [counts.positives, counts.negatives, counts.positive_signals, counts.negative_signals]


def _expand(values: Any) -> KeyCounts:
    numbers = list(values)
    if len(numbers) == 2:
        return KeyCounts(float(numbers[0]), float(numbers[1]), int(numbers[0]), int(numbers[1]))
    if len(numbers) == 3:  # the first stored form: [positives, targeted negatives, vague dismissals]
        positives, negatives, vague = (int(number) for number in numbers)
        return KeyCounts(float(positives), negatives + VAGUE_WEIGHT * vague, positives, negatives + vague)
    if len(numbers) == 4:
        return KeyCounts(float(numbers[0]), float(numbers[1]), int(numbers[2]), int(numbers[3]))
    raise ValueError(f"expected 2, 3 or 4 numbers, not {numbers!r}")


# -- words -----------------------------------------------------------------------------------------------------------


def _noun(counts: FeedbackCounts, *, direction: Direction, plural: bool) -> str:
    """"saves", "InMails", "saves or exports" (the positive signals this pipeline had), "dismissals"."""
    used: list[Signal] = ["dismiss"]
    if direction == "more":
        used = [signal for signal in SIGNALS if signal in POSITIVE_SIGNALS and counts.signals.get(signal)] or ["save"]
    return " or ".join(_NOUNS[signal][plural] for signal in used)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None


def _unique(values: Any) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable):
        return ()
    return tuple(dict.fromkeys(text for text in (_text(value) for value in values) if text))
