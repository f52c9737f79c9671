"""PURE: repair the words of a normalised job title against a vocabulary (the taxonomy's title words).

Real titles arrive with typos ("conservatioinst"), a space in the wrong place ("schoo lcook") or words run
together ("schoolcook"). A word the vocabulary knows is kept; an unknown one is, in this order, joined with an
unknown neighbour ("data base" → "database"), split into two known words ("schoolcook" → "school cook", also
after joining a misplaced space: "schoo lcook" → "schoolcook" → "school cook"), or replaced by the most common
known word within a small edit distance (optimal string alignment: a transposed letter counts once). Words of
three letters or fewer are never changed: they are acronyms more often than typos.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

__all__ = ["Vocabulary"]

_MIN_REPAIR_LENGTH = 4
_MIN_SPLIT_PART = 3
_CACHE = 65_536


def _max_edits(word: str) -> int:
    return 1 if len(word) <= 7 else 2


class Vocabulary:
    """Known words with how many titles use them; ``repair`` fixes the unknown words of a title."""

    def __init__(self, frequencies: Mapping[str, int]) -> None:
        self._frequency = dict(frequencies)
        by_length: dict[int, list[str]] = {}
        for word in sorted(self._frequency, key=lambda w: (-self._frequency[w], w)):
            by_length.setdefault(len(word), []).append(word)
        self._by_length = by_length
        self.repair = lru_cache(maxsize=_CACHE)(self._repair)

    def __contains__(self, word: object) -> bool:
        return word in self._frequency

    def _repair(self, tokens: tuple[str, ...]) -> tuple[str, ...]:
        """The title's words with unknown ones repaired (the same tuple when nothing needed or could be fixed)."""
        if all(self._known(token) for token in tokens):
            return tokens
        repaired: list[str] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if self._known(token) and (following is None or self._known(following)):
                repaired.append(token)
                index += 1
                continue
            if following is not None:
                joined = self._join(token, following)
                if joined is not None:
                    repaired.extend(joined)
                    index += 2
                    continue
            if self._known(token):
                repaired.append(token)
            else:
                repaired.extend(self._split(token) or (self._closest(token),))
            index += 1
        return tuple(repaired)

    def _known(self, token: str) -> bool:
        return token in self._frequency or len(token) < _MIN_REPAIR_LENGTH or not token.isalpha()

    def _join(self, first: str, second: str) -> tuple[str, ...] | None:
        """Two words of which one is unknown, read as one word or as two known words split elsewhere."""
        if not (first.isalpha() and second.isalpha()):
            return None
        joined = first + second
        if joined in self._frequency:
            return (joined,)
        split = self._split(joined)
        if split is not None:
            return split
        return None

    def _split(self, word: str) -> tuple[str, str] | None:
        best: tuple[float, tuple[str, str]] | None = None
        for cut in range(_MIN_SPLIT_PART, len(word) - _MIN_SPLIT_PART + 1):
            left, right = word[:cut], word[cut:]
            if left in self._frequency and right in self._frequency:
                # the split whose rarer half is most common: "schoolcook" → school cook, not "schoo lcook"
                score = math.log(min(self._frequency[left], self._frequency[right]))
                if best is None or score > best[0]:
                    best = (score, (left, right))
        return None if best is None else best[1]

    def _closest(self, word: str) -> str:
        limit = _max_edits(word)
        best: tuple[int, int, str] | None = None
        for length in range(len(word) - limit, len(word) + limit + 1):
            choices: Sequence[str] = self._by_length.get(length, ())
            if not choices:
                continue
            found = process.extractOne(word, choices, scorer=OSA.distance, score_cutoff=limit)
            if found is not None:
                candidate, distance, _ = found
                key = (int(distance), -self._frequency[candidate], candidate)
                if best is None or key < (best[0], -self._frequency[best[2]], best[2]):
                    best = (int(distance), self._frequency[candidate], candidate)
        return word if best is None else best[2]
