"""PURE: a pipeline's hiring signals → feedback counts → bounded, smoothed learned boosts, in recruiter words. No I/O.

Flow (the API keeps ``FeedbackCounts.to_dict()`` in the pipeline document's ``learned`` field)::

    features_of(candidate _source)  →  record(counts, features=…, signal=…, reason=…)  →  new counts
    learned_boosts(counts, prior=…)  →  LearnedBoosts for query.build_query (None: nothing learned yet)
    describe(counts)                 →  "more like: Kubernetes (4 saves)", "less like: sales titles (2 dismissals)"

Save, InMail and export are positive: every feature of the candidate gains a positive. A dismissal is negative only
for what its reason names (title → occupation codes, location → region, skills → skills, seniority → seniority);
"other" (or no reason) is a vague negative on every feature, worth ``VAGUE_WEIGHT`` of a targeted one.

A key's weight is its smoothed log-odds ``log((p + PSEUDO) / (n + PSEUDO))`` times the kind's ``scale``, then
``exp`` and clamped to [MIN_BOOST, MAX_BOOST]: PSEUDO pseudo-signals on each side keep one signal well away from
the bounds, and a key needs ``min_evidence`` signals before it moves at all. Skills are many per candidate and the
query multiplies every matching boost, so a skill's weight is shrunk by how many skills a positive candidate
brings (``skills_per_positive``): a candidate like the saved ones gains about what one saved occupation gives.
A tenant-wide prior (other pipelines' counts) may add at most ``PRIOR_SIGNALS`` signals' worth of pseudo-counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

from recmatch.query import MAX_BOOST, MIN_BOOST, LearnedBoosts

__all__ = [
    "KINDS",
    "PSEUDO",
    "VAGUE_WEIGHT",
    "CandidateFeatures",
    "DismissReason",
    "FeedbackCounts",
    "Kind",
    "KeyCounts",
    "LearnedItem",
    "Signal",
    "describe",
    "features_of",
    "learned_boosts",
    "merged",
    "record",
]

Signal = Literal["save", "inmail", "export", "dismiss"]
DismissReason = Literal["title", "location", "skills", "seniority", "other"]
Kind = Literal["occupation_codes", "skills", "companies", "seniority", "regions"]
Direction = Literal["more", "less"]

SIGNALS: tuple[Signal, ...] = get_args(Signal)
POSITIVE_SIGNALS: frozenset[Signal] = frozenset(("save", "inmail", "export"))
DISMISS_REASONS: tuple[DismissReason, ...] = get_args(DismissReason)
KINDS: tuple[Kind, ...] = get_args(Kind)

# What a dismissal reason says the recruiter disliked.
REASON_KINDS: Mapping[DismissReason, tuple[Kind, ...]] = {
    "title": ("occupation_codes",),
    "location": ("regions",),
    "skills": ("skills",),
    "seniority": ("seniority",),
    "other": KINDS,
}
VAGUE_WEIGHT = 0.25  # an "other" dismissal counts this much of a negative on every feature
PSEUDO = 2.0  # pseudo-signals on each side of a key's log-odds
PRIOR_SIGNALS = 2.0  # a tenant-wide prior weighs at most this many of the pipeline's own signals


@dataclass(frozen=True, slots=True)
class _KindModel:
    scale: float  # multiplies the smoothed log-odds
    min_evidence: float  # signals on a key before it gets a weight
    max_keys: int  # kept in the stored counts; the weakest go first
    can_raise: bool = True  # False: positives only protect a key from negatives (see regions)


_MODELS: Mapping[Kind, _KindModel] = {
    "occupation_codes": _KindModel(scale=1.0, min_evidence=1.0, max_keys=40),
    "skills": _KindModel(scale=1.0, min_evidence=2.0, max_keys=80),
    "companies": _KindModel(scale=0.5, min_evidence=2.0, max_keys=30),
    "seniority": _KindModel(scale=0.5, min_evidence=2.0, max_keys=8),
    "regions": _KindModel(scale=0.75, min_evidence=1.0, max_keys=30, can_raise=False),
}
SPREAD_EXP = 1.0
SPREAD_NEG = False
SPREAD_POS = False
REGION_RULE = False
_MIN_CHANGE = 0.02  # weights closer to 1 than this are left out of the boosts
_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class CandidateFeatures:
    """What learning reads of a candidate: the keys its boosts are made of."""

    occupation_codes: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    company: str | None = None
    seniority: str | None = None
    country: str | None = None
    region: str | None = None

    def keys(self, kind: Kind) -> tuple[str, ...]:
        """This candidate's keys of one kind (a region key is "US" or "US-TX", the most precise one known)."""
        if kind == "occupation_codes":
            return self.occupation_codes
        if kind == "skills":
            return self.skills
        if kind == "companies":
            return (self.company,) if self.company else ()
        if kind == "seniority":
            return (self.seniority,) if self.seniority else ()
        if not self.country:
            return ()
        return (f"{self.country}-{self.region}",) if self.region else (self.country,)


def features_of(source: Mapping[str, Any]) -> CandidateFeatures:
    """The features of a candidate document's ``_source`` (fields as ``recmatch.documents`` writes them)."""
    location = source.get("location") or {}
    country = _text(location.get("country"))
    return CandidateFeatures(
        occupation_codes=_unique(source.get("occupation_codes")),
        skills=_unique(source.get("skills")),
        company=_text(source.get("company")),
        seniority=_text(source.get("seniority")),
        country=country.upper() if country else None,
        region=_text(location.get("region")) if country else None,
    )


class KeyCounts(NamedTuple):
    """Signals on one key: positives, targeted negatives, and vague ("other") dismissals."""

    positives: float = 0
    negatives: float = 0
    vague: float = 0

    @property
    def negative_weight(self) -> float:
        """Negatives as evidence: a vague dismissal counts VAGUE_WEIGHT."""
        return self.negatives + VAGUE_WEIGHT * self.vague

    @property
    def evidence(self) -> float:
        """How much was seen about this key."""
        return self.positives + self.negative_weight


_EMPTY_KEY = KeyCounts()


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    """A pipeline's (or a tenant's) signals per feature kind and key, and totals per signal; never mutated."""

    occupation_codes: Mapping[str, KeyCounts] = field(default_factory=dict)
    skills: Mapping[str, KeyCounts] = field(default_factory=dict)
    companies: Mapping[str, KeyCounts] = field(default_factory=dict)
    seniority: Mapping[str, KeyCounts] = field(default_factory=dict)
    regions: Mapping[str, KeyCounts] = field(default_factory=dict)
    signals: Mapping[Signal, int] = field(default_factory=dict)
    skills_seen: int = 0  # skills over all positive candidates, for the mean a positive brings

    def of(self, kind: Kind) -> Mapping[str, KeyCounts]:
        """The counts of one kind."""
        return getattr(self, kind)  # type: ignore[no-any-return]

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
        """The mean number of skills a positive candidate had (1 when none was seen)."""
        return self.skills_seen / self.positives if self.positives and self.skills_seen else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able dict (key → [positives, negatives] or [positives, negatives, vague])."""
        data: dict[str, Any] = {"v": _FORMAT_VERSION, "signals": {s: n for s, n in self.signals.items() if n}}
        if self.skills_seen:
            data["skills_seen"] = self.skills_seen
        for kind in KINDS:
            keys = self.of(kind)
            if keys:
                data[kind] = {key: list(counts if counts.vague else counts[:2]) for key, counts in keys.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackCounts:
        """The inverse of ``to_dict``; ValueError when the dict is not one."""
        try:
            if int(data.get("v", _FORMAT_VERSION)) != _FORMAT_VERSION:
                raise ValueError(f"unknown format version {data.get('v')!r}")
            signals = {s: int(n) for s, n in (data.get("signals") or {}).items() if s in SIGNALS and int(n) > 0}
            kinds = {
                kind: {str(key): KeyCounts(*(int(n) for n in counts)) for key, counts in (data.get(kind) or {}).items()}
                for kind in KINDS
            }
            return cls(**kinds, signals=signals, skills_seen=int(data.get("skills_seen", 0)))
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not stored feedback counts: {error!r}") from error


@dataclass(frozen=True, slots=True)
class LearnedItem:
    """One learned preference as the recruiter sees it."""

    kind: Kind
    key: str
    label: str
    direction: Direction
    signals: int
    weight: float
    text: str  # "more like: Kubernetes (4 saves)", "less like: sales titles (2 dismissals)"


def record(
    counts: FeedbackCounts,
    *,
    features: CandidateFeatures,
    signal: Signal,
    reason: DismissReason | None = None,
) -> FeedbackCounts:
    """The counts after one signal on a candidate with these features (reason: only for dismissals)."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}")
    if reason is not None and (signal != "dismiss" or reason not in DISMISS_REASONS):
        raise ValueError(f"reason {reason!r} does not go with signal {signal!r}")
    positive = signal in POSITIVE_SIGNALS
    targeted = () if positive else REASON_KINDS[reason or "other"]
    vague = not positive and (reason or "other") == "other"
    updated: dict[str, Mapping[str, KeyCounts]] = {}
    for kind in KINDS:
        keys = features.keys(kind)
        if not keys or not (positive or kind in targeted):
            continue
        table = dict(counts.of(kind))
        unique = list(dict.fromkeys(keys))
        share = 1.0
        if kind == "occupation_codes" and ((not positive and SPREAD_NEG) or (positive and SPREAD_POS)):
            share = 1.0 / len(unique) ** SPREAD_EXP
        for key in unique:
            before = table.pop(key, _EMPTY_KEY)  # re-inserted last: the most recently touched key
            table[key] = KeyCounts(
                positives=before.positives + positive * share,
                negatives=before.negatives + (not positive and not vague) * share,
                vague=before.vague + vague * share,
            )
        updated[kind] = _bounded_keys(table, _MODELS[kind].max_keys)
    signals = dict(counts.signals)
    signals[signal] = signals.get(signal, 0) + 1
    skills_seen = counts.skills_seen + (len(set(features.skills)) if positive else 0)
    return FeedbackCounts(
        **{kind: updated.get(kind, counts.of(kind)) for kind in KINDS}, signals=signals, skills_seen=skills_seen
    )


def merged(all_counts: Iterable[FeedbackCounts]) -> FeedbackCounts:
    """The sum of several pipelines' counts (a tenant-wide prior), bounded like any counts."""
    tables: dict[Kind, dict[str, KeyCounts]] = {kind: {} for kind in KINDS}
    signals: dict[Signal, int] = {}
    skills_seen = 0
    for counts in all_counts:
        for kind in KINDS:
            table = tables[kind]
            for key, added in counts.of(kind).items():
                before = table.get(key, _EMPTY_KEY)
                table[key] = KeyCounts(*(a + b for a, b in zip(before, added, strict=True)))
        for signal, n in counts.signals.items():
            signals[signal] = signals.get(signal, 0) + n
        skills_seen += counts.skills_seen
    return FeedbackCounts(
        **{kind: _bounded_keys(tables[kind], _MODELS[kind].max_keys) for kind in KINDS},
        signals=signals,
        skills_seen=skills_seen,
    )


def learned_boosts(
    counts: FeedbackCounts, *, prior: FeedbackCounts | None = None, home_regions: Collection[str] = ()
) -> LearnedBoosts | None:
    """Bounded, smoothed factors for the query builder; None when nothing was learned."""
    weights = {kind: _kind_weights(counts, prior, kind) for kind in KINDS}
    weights["regions"] = {key: w for key, w in weights["regions"].items() if key not in set(home_regions)}
    if not any(weights.values()):
        return None
    return LearnedBoosts(
        occupation_codes=weights["occupation_codes"],
        skills=weights["skills"],
        companies=weights["companies"],
        seniority=weights["seniority"],
        regions=weights["regions"],
    )


def describe(
    counts: FeedbackCounts,
    *,
    label_of: Callable[[Kind, str], str] | None = None,
    prior: FeedbackCounts | None = None,
) -> list[LearnedItem]:
    """What the ranking learned, in recruiter words, strongest first."""
    items: list[LearnedItem] = []
    for kind in KINDS:
        table = counts.of(kind)
        for key, weight in _kind_weights(counts, prior, kind).items():
            direction: Direction = "more" if weight > 1 else "less"
            own = table.get(key, _EMPTY_KEY)
            signals = own.positives if direction == "more" else own.negatives + own.vague
            if signals == 0:
                continue  # learned from the tenant's other pipelines only: nothing this recruiter did
            label = label_of(kind, key) if label_of is not None else _default_label(kind, key)
            noun = _noun(counts, direction=direction, plural=signals != 1)
            items.append(LearnedItem(kind=kind, key=key, label=label, direction=direction, signals=signals,
                                     weight=weight, text=f"{direction} like: {label} ({signals} {noun})"))
    items.sort(key=lambda item: (-abs(math.log(item.weight)), -item.signals, item.kind, item.key))
    return items


# -- weights ---------------------------------------------------------------------------------------------------------


def _kind_weights(counts: FeedbackCounts, prior: FeedbackCounts | None, kind: Kind) -> dict[str, float]:
    model = _MODELS[kind]
    table = counts.of(kind)
    prior_table: Mapping[str, KeyCounts] = {}
    prior_share = 0.0
    if prior is not None:
        prior_total = prior.positives + prior.negatives
        prior_table = prior.of(kind)
        prior_share = min(1.0, PRIOR_SIGNALS / prior_total) if prior_total else 0.0
    scale = model.scale
    if kind == "skills":
        # The query multiplies every matching boost: spread one positive's worth over the skills it brings.
        scale /= math.sqrt(max(1.0, counts.skills_per_positive))
    weights: dict[str, float] = {}
    for key in sorted(set(table) | set(prior_table)):
        own = table.get(key, _EMPTY_KEY)
        borrowed = prior_table.get(key, _EMPTY_KEY)
        positives = own.positives + prior_share * borrowed.positives
        negatives = own.negative_weight + prior_share * borrowed.negative_weight
        if positives + negatives < model.min_evidence:
            continue
        if not model.can_raise:
            if positives > 0:
                continue
        log_odds = math.log((positives + PSEUDO) / (negatives + PSEUDO))
        weight = round(min(MAX_BOOST if model.can_raise else 1.0, max(MIN_BOOST, math.exp(scale * log_odds))), 3)
        if abs(weight - 1.0) >= _MIN_CHANGE:
            weights[key] = weight
    return weights


def _bounded_keys(table: dict[str, KeyCounts], limit: int) -> dict[str, KeyCounts]:
    """At most ``limit`` keys: the least evidence goes first, and among equals the least recently touched."""
    if len(table) <= limit:
        return table
    order = {key: position for position, key in enumerate(table)}
    keep = sorted(table, key=lambda key: (-table[key].evidence, -order[key]))[:limit]
    kept = set(keep)
    return {key: counts for key, counts in table.items() if key in kept}


# -- words -----------------------------------------------------------------------------------------------------------


def _default_label(kind: Kind, key: str) -> str:
    if kind == "occupation_codes":
        return f"occupation {key} titles"
    if kind == "seniority":
        return f"{key}-level people"
    if kind == "regions":
        return f"people in {key}"
    if kind == "companies":
        return f"people at {key}"
    return key


_NOUNS: Mapping[Signal, tuple[str, str]] = {
    "save": ("save", "saves"), "inmail": ("InMail", "InMails"), "export": ("export", "exports"),
    "dismiss": ("dismissal", "dismissals"),
}


def _noun(counts: FeedbackCounts, *, direction: Direction, plural: bool) -> str:
    """"saves", "InMails", "saves or exports" (the positive kinds this pipeline had), "dismissals"."""
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
