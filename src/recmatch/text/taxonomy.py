"""Occupations from O*NET: job title -> occupation codes, related occupations and skills.

A taxonomy is a JSON file, optionally xz-compressed. The default is the full O*NET one shipped in the package
(``recmatch/text/data/taxonomy.json.xz``, all 1,016 occupations; ``scripts/build_taxonomy.py`` writes it);
``RECMATCH_TAXONOMY_PATH`` names another (``recmatch taxonomy import`` writes one)::

    {"source": "O*NET 29.3 Database, May 2025 Release",
     "credit": "This product includes information from the O*NET 29.3 Database by ... CC BY 4.0 license.",
     "occupations": {
       "15-1252.00": {
         "title": "Software Developers",            # O*NET canonical title
         "job_zone": 4,                             # 1-5 (experience level), null when O*NET has none
         "alt_titles": ["Software Developer", ...], # what people write: reported titles first, then alternates
         "skills": [["Python", 4.0], ...],          # O*NET technology names; weight 1 + 1 if hot + 2 if in demand
         "related": [["15-1253.00", 1], ...],       # tier 1 Primary-Short, 2 Primary-Long, 3 Supplemental
         "title_keys": ["software developer", ...]  # normalize_title of [title, *alt_titles] (optional)
       }, ...}}

``title_keys`` spare a process normalising 58,000 titles when it starts. They are trusted only when a sample of them
(every KEY_SAMPLE_EVERY-th) equals what the running ``normalize_title`` makes of the same titles; otherwise all are
recomputed, so a change to normalisation costs start-up time until the file is rebuilt, never correctness.

Title matching (``read_title``) compares ``normalize_title`` forms: an exact match on a canonical or alternate title,
then the same without seniority words, then the same with the parts around a comma swapped ("Manager, Sales"), then
with unknown words repaired against the taxonomy's words (``recmatch.text.spelling``: typos, split and merged words),
then a rarity-weighted token overlap of the repaired words. Lookups are precomputed and results cached, since
indexing calls this once per candidate.
"""

from __future__ import annotations

import csv
import lzma
import math
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from recmatch.core.config import get_settings
from recmatch.text.normalize import TITLE_STOPWORDS, normalize_skill, normalize_title
from recmatch.text.spelling import Vocabulary

__all__ = [
    "Occupation",
    "OccupationMatch",
    "SENIORITY_WORDS",
    "Taxonomy",
    "TitleReading",
    "get_taxonomy",
    "import_onet",
    "is_holdout_title",
    "shipped_taxonomy_path",
    "write_taxonomy",
]

CREDIT_TEMPLATE = (
    "This product includes information from the {database} by the U.S. Department of Labor, Employment and "
    "Training Administration (USDOL/ETA). Used under the CC BY 4.0 license."
)
TIERS = {"Primary-Short": 1, "Primary-Long": 2, "Supplemental": 3}
SENIORITY_WORDS = frozenset("senior junior lead principal staff experienced trainee".split())

_TITLE_MATCH_CACHE = 16_384
_MAX_OVERLAP_MATCHES = 3
_MIN_OVERLAP_SCORE = 0.1
KEY_SAMPLE_EVERY = 97  # stored title keys checked against normalize_title at load: one title in this many
_INVERTED_FACTOR = 0.95  # "Manager, Sales" read as "Sales Manager"
_REPAIRED_FACTOR = 0.9  # a title matched only after its words were repaired


@dataclass(frozen=True, slots=True)
class Occupation:
    """One O*NET occupation as the taxonomy holds it."""

    code: str
    title: str
    job_zone: int | None
    alt_titles: tuple[str, ...]
    skills: tuple[tuple[str, float], ...]
    related: tuple[tuple[str, int], ...]
    title_keys: tuple[str, ...] = ()  # normalize_title of (title, *alt_titles), when the file carries them


@dataclass(frozen=True, slots=True)
class OccupationMatch:
    """An occupation a job title maps to, with a confidence in 0..1 (1.0 = exact title match)."""

    code: str
    title: str
    confidence: float


@dataclass(frozen=True, slots=True)
class TitleReading:
    """How a job title was read: the normalised words it was matched as (repaired, reordered) and its occupations."""

    key: str  # normalised title as matched: "sales manager" for "Manager, Sales", "school cook" for "schoo lcook"
    matches: tuple[OccupationMatch, ...]  # most confident first; () when nothing fits

    @property
    def confidence(self) -> float:
        """The best occupation's confidence (0.0 when none fits)."""
        return self.matches[0].confidence if self.matches else 0.0


def is_holdout_title(title: str, every: int = 5) -> bool:
    """Whether a title is reserved for pipelines in evaluations (never a generated candidate's title)."""
    if every <= 0:
        return False
    return zlib.crc32(normalize_title(title).encode("utf-8")) % every == 0


def shipped_taxonomy_path() -> Path:
    """The full O*NET taxonomy shipped inside the package (xz-compressed JSON)."""
    return Path(__file__).parent / "data" / "taxonomy.json.xz"


class Taxonomy:
    """Occupations with precomputed title lookups; build with ``load`` or ``from_dict``."""

    def __init__(self, *, occupations: Mapping[str, Occupation], source: str, credit: str) -> None:
        self.source = source
        self.credit = credit
        self._occupations = dict(sorted(occupations.items()))
        self._exact: dict[str, tuple[OccupationMatch, ...]] = {}
        self._entry_tokens: list[frozenset[str]] = []
        self._entry_codes: list[tuple[str, ...]] = []
        self._entry_weight: list[float] = []
        self._postings: dict[str, list[int]] = {}
        self._idf: dict[str, float] = {}
        self._unknown_idf = 1.0
        self._build_title_index()
        self._vocabulary = Vocabulary(self._word_frequencies())
        self._match_key = lru_cache(maxsize=_TITLE_MATCH_CACHE)(self._compute_match)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        """A taxonomy from the JSON structure described in the module docstring."""
        try:
            raw_occupations = data["occupations"]
            keys_valid = _stored_keys_current(raw_occupations)
            occupations = {
                code: Occupation(
                    code=code,
                    title=entry["title"],
                    job_zone=entry.get("job_zone"),
                    alt_titles=tuple(entry.get("alt_titles", ())),
                    skills=tuple((name, float(weight)) for name, weight in entry.get("skills", ())),
                    related=tuple((related, int(tier)) for related, tier in entry.get("related", ())),
                    title_keys=tuple(entry.get("title_keys", ())) if keys_valid else (),
                )
                for code, entry in raw_occupations.items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a recmatch taxonomy: {error!r}") from error
        return cls(occupations=occupations, source=str(data.get("source", "")), credit=str(data.get("credit", "")))

    @classmethod
    def load(cls, path: Path | None = None) -> Taxonomy:
        """Read a taxonomy JSON file (``.xz``: compressed); None means the shipped full taxonomy."""
        path = shipped_taxonomy_path() if path is None else Path(path)
        raw = path.read_bytes()
        if path.suffix == ".xz":
            raw = lzma.decompress(raw)
        return cls.from_dict(orjson.loads(raw))

    # --- lookups ---------------------------------------------------------------------------------------------------

    def codes(self) -> list[str]:
        """All occupation codes, sorted."""
        return list(self._occupations)

    def occupation(self, code: str) -> Occupation:
        """The occupation with this code; KeyError when unknown."""
        return self._occupations[code]

    def related(self, code: str) -> list[tuple[str, int]]:
        """Related occupation codes with their tier (1 closest), best first; [] for an unknown code."""
        occupation = self._occupations.get(code)
        return list(occupation.related) if occupation else []

    def skills(self, code: str) -> list[tuple[str, float]]:
        """The occupation's skills (O*NET names) with weights, heaviest first; [] for an unknown code."""
        occupation = self._occupations.get(code)
        return list(occupation.skills) if occupation else []

    def match_title(self, title: str) -> list[OccupationMatch]:
        """Occupations a job title maps to, most confident first; [] when nothing fits."""
        return list(self.read_title(title).matches)

    def read_title(self, title: str) -> TitleReading:
        """The title as matched (reordered, repaired) and the occupations it maps to."""
        if not isinstance(title, str):
            return TitleReading(key="", matches=())
        key = normalize_title(title)
        if not key:
            return TitleReading(key="", matches=())
        inverted = _inverted(title)
        return self._match_key(key, inverted)

    def occupation_codes(self, title: str, *, min_confidence: float = 0.5) -> list[str]:
        """Codes of the occupations a title maps to with at least ``min_confidence``."""
        return [match.code for match in self.match_title(title) if match.confidence >= min_confidence]

    # --- index -----------------------------------------------------------------------------------------------------

    def _build_title_index(self) -> None:
        # key -> {code: rank of the title within the occupation}; -1 for the canonical title, then alt title order.
        keyed: dict[str, dict[str, int]] = defaultdict(dict)
        for code, occupation in self._occupations.items():
            title_keys = occupation.title_keys
            if len(title_keys) != 1 + len(occupation.alt_titles):
                title_keys = tuple(map(normalize_title, (occupation.title, *occupation.alt_titles)))
            canonical = title_keys[0]
            if canonical:
                keyed[canonical][code] = -1
            for position, key in enumerate(title_keys[1:]):
                if key:
                    keyed[key].setdefault(code, position)
        self._exact_ranks = keyed  # turned into matches on first lookup (_exact_get): most keys are never asked

        entry_ids: dict[frozenset[str], int] = {}
        for key, codes in keyed.items():
            tokens = frozenset(_overlap_tokens(key.split()))
            if not tokens:
                continue
            entry_id = entry_ids.get(tokens)
            if entry_id is None:
                entry_id = entry_ids[tokens] = len(self._entry_tokens)
                self._entry_tokens.append(tokens)
                self._entry_codes.append(())
            self._entry_codes[entry_id] = tuple(sorted({*self._entry_codes[entry_id], *codes}))
        document_frequency: dict[str, int] = defaultdict(int)
        for entry_id, tokens in enumerate(self._entry_tokens):
            for token in tokens:
                document_frequency[token] += 1
                self._postings.setdefault(token, []).append(entry_id)
        entries = max(len(self._entry_tokens), 1)
        self._idf = {token: math.log(1 + entries / count) for token, count in document_frequency.items()}
        self._unknown_idf = math.log(1 + entries)
        self._entry_weight = [sum(self._idf[token] for token in tokens) for tokens in self._entry_tokens]

    def _exact_get(self, key: str) -> tuple[OccupationMatch, ...] | None:
        exact = self._exact.get(key)
        if exact is None:
            ranks = self._exact_ranks.get(key)
            if ranks is None:
                return None
            exact = self._exact[key] = self._exact_matches(ranks)
        return exact

    def _exact_matches(self, ranks: Mapping[str, int]) -> tuple[OccupationMatch, ...]:
        # A title several occupations share is less certain the more share it; the occupation where it is most
        # typical (canonical, else earliest in its alt titles, which list reported titles first) comes first.
        ordered = sorted(ranks, key=lambda code: (ranks[code], code))
        shared = 1.0 if len(ordered) == 1 else max(0.6, round(1.0 - 0.1 * (len(ordered) - 1), 3))
        has_canonical = ranks[ordered[0]] < 0
        matches = []
        for place, code in enumerate(ordered):
            if ranks[code] < 0:
                confidence = 1.0
            elif has_canonical:
                confidence = min(shared, 0.8)
            else:
                confidence = shared if place == 0 else max(0.5, round(shared - 0.05, 3))
            matches.append(OccupationMatch(code=code, title=self._occupations[code].title, confidence=confidence))
        return tuple(matches)

    def _word_frequencies(self) -> dict[str, int]:
        frequencies: dict[str, int] = defaultdict(int)
        for key in self._exact_ranks:
            for token in key.split():
                frequencies[token] += 1
        return frequencies

    def _compute_match(self, key: str, inverted: str | None) -> TitleReading:
        tokens = key.split()
        for reading, factor in ((key, 1.0), (inverted, _INVERTED_FACTOR)):
            if reading:
                found = self._exact_or_core(reading, factor)
                if found is not None:
                    return found
        repaired = list(self._vocabulary.repair(tuple(tokens)))
        if repaired != tokens:
            found = self._exact_or_core(" ".join(repaired), _REPAIRED_FACTOR)
            if found is not None:
                return found
            if inverted:
                inverted_repaired = self._vocabulary.repair(tuple(inverted.split()))
                found = self._exact_or_core(" ".join(inverted_repaired), _REPAIRED_FACTOR * _INVERTED_FACTOR)
                if found is not None:
                    return found
        return TitleReading(key=" ".join(repaired), matches=self._overlap_matches(set(_overlap_tokens(repaired))))

    def _exact_or_core(self, key: str, factor: float) -> TitleReading | None:
        """An exact match of KEY, else of KEY without seniority words; confidences times FACTOR."""
        exact = self._exact_get(key)
        if exact is None:
            tokens = key.split()
            core = _strip_seniority(tokens)
            if not core or len(core) == len(tokens):
                return None
            exact = self._exact_get(" ".join(core))
            if exact is None:
                return None
            factor *= 0.95
        if factor == 1.0:
            return TitleReading(key=key, matches=exact)
        return TitleReading(key=key, matches=tuple(
            OccupationMatch(code=m.code, title=m.title, confidence=round(m.confidence * factor, 3)) for m in exact
        ))

    def _overlap_matches(self, query: set[str]) -> tuple[OccupationMatch, ...]:
        if not query:
            return ()
        shared: dict[int, float] = defaultdict(float)
        for token in query:
            weight = self._idf.get(token)
            if weight is not None:
                for entry_id in self._postings[token]:
                    shared[entry_id] += weight
        if not shared:
            return ()
        query_weight = sum(self._idf.get(token, self._unknown_idf) for token in query)
        best: dict[str, float] = {}
        for entry_id, common in shared.items():
            score = common / (query_weight + self._entry_weight[entry_id] - common)
            for code in self._entry_codes[entry_id]:
                if score > best.get(code, 0.0):
                    best[code] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:_MAX_OVERLAP_MATCHES]
        return tuple(
            OccupationMatch(code=code, title=self._occupations[code].title, confidence=round(0.9 * score, 3))
            for code, score in ranked
            if score >= _MIN_OVERLAP_SCORE
        )


def _stored_keys_current(raw_occupations: Mapping[str, Any]) -> bool:
    """Whether the file's title keys are what normalize_title makes today (checked on a sample)."""
    checked = 0
    for entry in raw_occupations.values():
        keys = entry.get("title_keys")
        titles = (entry.get("title"), *entry.get("alt_titles", ()))
        if not isinstance(keys, list) or len(keys) != len(titles):
            return False
        for position in range(-checked % KEY_SAMPLE_EVERY, len(titles), KEY_SAMPLE_EVERY):
            if normalize_title(titles[position]) != keys[position]:
                return False
        checked += len(titles)
    return True


def _inverted(title: str) -> str | None:
    """"Manager, Sales" → "sales manager": job boards and HR systems often list the noun first."""
    head, comma, tail = title.partition(",")
    if not comma or "," in tail:
        return None
    inverted = normalize_title(f"{tail} {head}")
    return inverted or None


def _strip_seniority(tokens: list[str]) -> list[str]:
    start, end = 0, len(tokens)
    while start < end and tokens[start] in SENIORITY_WORDS:
        start += 1
    while end > start and tokens[end - 1] in SENIORITY_WORDS:
        end -= 1
    return tokens[start:end]


def _overlap_tokens(tokens: list[str]) -> list[str]:
    return [token for token in tokens if token not in TITLE_STOPWORDS and token not in SENIORITY_WORDS]


@lru_cache
def get_taxonomy() -> Taxonomy:
    """The process's taxonomy: ``RECMATCH_TAXONOMY_PATH`` if set, else the shipped one."""
    return Taxonomy.load(get_settings().taxonomy_path)


# --- O*NET import ---------------------------------------------------------------------------------------------------

_DATED_TITLE_SOURCES = frozenset(("04", "06"))
_PARENTHETICAL_RE = re.compile(r"\s*\(([^()]*(?:\([^()]*\))?[^()]*)\)")


def _read_tsv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def _title_variants(title: str, short_title: str = "") -> list[str]:
    """"CEO (Chief Executive Officer)" -> ["CEO", "Chief Executive Officer"]; O*NET's short title second."""
    base = " ".join(_PARENTHETICAL_RE.sub("", title).split())
    variants = [base, " ".join(short_title.split())]
    inner = _PARENTHETICAL_RE.findall(title)
    if len(inner) == 1 and base and title.rstrip().endswith(")"):
        variants.append(" ".join(inner[0].split()))
    return [variant for variant in variants if variant]


def _source_line(onet_dir: Path) -> str:
    readme = onet_dir / "Read Me.txt"
    if readme.is_file():
        lines = [line.strip() for line in readme.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line and not set(line) <= {"-"}]
        if lines:
            return ", ".join(lines[:2])
    return "O*NET Database"


def import_onet(
    onet_dir: Path,
    *,
    codes: Collection[str] | None = None,
    max_alt_titles: int | None = None,
    max_skills: int | None = None,
) -> dict[str, Any]:
    """The taxonomy dict (see module docstring) from the official O*NET text files, all occupations or ``codes``."""
    onet_dir = Path(onet_dir)
    titles: dict[str, str] = {}
    for row in _read_tsv(onet_dir / "Occupation Data.txt"):
        titles[row["O*NET-SOC Code"]] = row["Title"]
    if codes is not None:
        missing = sorted(set(codes) - titles.keys())
        if missing:
            raise ValueError(f"O*NET has no occupation {', '.join(missing)}")
        titles = {code: titles[code] for code in sorted(set(codes))}

    job_zones = {
        row["O*NET-SOC Code"]: int(row["Job Zone"])
        for row in _read_tsv(onet_dir / "Job Zones.txt")
        if row["O*NET-SOC Code"] in titles and row["Job Zone"].strip().isdigit()
    }

    # (rank, text) per code: reported titles (shown in My Next Move first), then alternates, current and short first.
    ranked_titles: dict[str, list[tuple[tuple[int, ...], str]]] = defaultdict(list)
    for order, row in enumerate(_read_tsv(onet_dir / "Sample of Reported Titles.txt")):
        code = row["O*NET-SOC Code"]
        if code in titles:
            group = 0 if row.get("Shown in My Next Move", "").strip() == "Y" else 1
            for variant in _title_variants(row["Reported Job Title"]):
                ranked_titles[code].append(((group, 0, False, order), variant))
    for order, row in enumerate(_read_tsv(onet_dir / "Alternate Titles.txt")):
        code = row["O*NET-SOC Code"]
        if code in titles:
            sources = {source.strip() for source in (row.get("Source(s)") or "").split(",") if source.strip()}
            # Sources 04 and 06 hold older dictionary titles; the others (job postings, employers) read current.
            current = len(sources - _DATED_TITLE_SOURCES)
            for variant in _title_variants(row["Alternate Title"], row.get("Short Title") or ""):
                ranked_titles[code].append(((2, -current, len(variant.split()) > 3, order), variant))

    ranked_skills: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for row in _read_tsv(onet_dir / "Technology Skills.txt"):
        code = row["O*NET-SOC Code"]
        if code in titles:
            weight = 1.0 + (row["Hot Technology"] == "Y") + 2.0 * (row["In Demand"] == "Y")
            ranked_skills[code].append((weight, row["Example"].strip()))

    related: dict[str, list[tuple[tuple[int, int], str]]] = defaultdict(list)
    for row in _read_tsv(onet_dir / "Related Occupations.txt"):
        code, other = row["O*NET-SOC Code"], row["Related O*NET-SOC Code"]
        tier = TIERS.get(row["Relatedness Tier"].strip())
        if code in titles and other in titles and tier is not None and other != code:
            index = int(row["Index"]) if row["Index"].strip().isdigit() else 0
            related[code].append(((tier, index), other))

    occupations: dict[str, dict[str, Any]] = {}
    for code, title in titles.items():
        alt_titles = _unique(
            (text for _, text in sorted(ranked_titles[code], key=lambda item: item[0])), normalize_title, max_alt_titles
        )
        skill_names = _unique(
            (name for _, name in sorted(ranked_skills[code], key=lambda item: (-item[0], item[1].casefold()))),
            normalize_skill,
            max_skills,
        )
        weights = {name: weight for weight, name in ranked_skills[code]}
        seen_related: dict[str, int] = {}
        for (tier, _), other in sorted(related[code]):
            seen_related.setdefault(other, tier)
        occupations[code] = {
            "title": title,
            "job_zone": job_zones.get(code),
            "alt_titles": alt_titles,
            "skills": [[name, weights[name]] for name in skill_names],
            "related": [[other, tier] for other, tier in seen_related.items()],
        }

    source = _source_line(onet_dir)
    database = re.search(r"O\*NET [\d.]+ Database", source)
    return {
        "source": source,
        "credit": CREDIT_TEMPLATE.format(database=database.group(0) if database else "O*NET Database"),
        "occupations": occupations,
    }


def _unique(texts: Iterable[str], key: Callable[[str], str], limit: int | None) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for text in texts:
        normalised = key(text)
        if normalised and normalised not in seen:
            seen.add(normalised)
            kept.append(text)
            if limit is not None and len(kept) >= limit:
                break
    return kept


def write_taxonomy(data: Mapping[str, Any], path: Path) -> None:
    """Write a taxonomy dict as JSON (xz-compressed when PATH ends in .xz), one occupation a line, with the
    normalised title keys that spare a loading process the work."""
    lines = [
        "{" + f'"source": {orjson.dumps(data["source"]).decode()}, "credit": {orjson.dumps(data["credit"]).decode()},',
        '"occupations": {',
    ]
    items = sorted(data["occupations"].items())
    for position, (code, entry) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        keyed = {**entry, "title_keys": [normalize_title(t) for t in (entry["title"], *entry.get("alt_titles", ()))]}
        lines.append(f"{orjson.dumps(code).decode()}: {orjson.dumps(keyed).decode()}{comma}")
    lines.append("}}")
    text = ("\n".join(lines) + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xz":
        text = lzma.compress(text, preset=9 | lzma.PRESET_EXTREME)
    path.write_bytes(text)
