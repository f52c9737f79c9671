"""What understanding a job title costs and how often it finds the right occupation, technique by technique.

    python scripts/bench_understanding.py --titles 2000 --seed 2

Titles: held-out O*NET titles (``taxonomy.is_holdout_title``, never a generated candidate's title) of every
occupation, each turned into a variant a recruiter might type (``scripts/title_variants.py``: seniority words,
abbreviations, inversions, case, a transposed letter, a moved space). A title counts as understood when its first
occupation is the one O*NET lists it under. Each title is read once, with every cache empty, so times are those of a
title the process has not seen (a repeated title is a cache hit, microseconds).

Techniques, all on the taxonomy recmatch ships:
  overlap      exact title, then without seniority words, then rarity-weighted word overlap (before this work)
  shipped      Taxonomy.read_title: overlap + comma inversion + typo/space repair of unknown words (rapidfuzz OSA)
  whole-title  rapidfuzz token_sort_ratio of the normalised title against every title key, best key's occupations
  char-3grams  cosine of character-trigram TF-IDF vectors against every title key, best key's occupations
"""

from __future__ import annotations

import math
import shlex
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from random import Random
from typing import Annotated

import typer
from rapidfuzz import fuzz, process
from title_variants import title_variant  # scripts/title_variants.py

from recmatch.text.normalize import normalize_title
from recmatch.text.taxonomy import OccupationMatch, Taxonomy, is_holdout_title

BUDGET_MS = 5.0


def _overlap(taxonomy: Taxonomy) -> Callable[[str], tuple[OccupationMatch, ...]]:
    def read(title: str) -> tuple[OccupationMatch, ...]:
        key = normalize_title(title)
        found = taxonomy._exact_or_core(key, 1.0)  # noqa: SLF001 - the benchmark takes the pipeline apart
        if found is not None:
            return found.matches
        return taxonomy._overlap_matches(set(key.split()))  # noqa: SLF001
    return read


def _whole_title(taxonomy: Taxonomy) -> Callable[[str], tuple[OccupationMatch, ...]]:
    keys = list(taxonomy._exact_ranks)  # noqa: SLF001

    def read(title: str) -> tuple[OccupationMatch, ...]:
        found = process.extractOne(normalize_title(title), keys, scorer=fuzz.token_sort_ratio)
        return taxonomy._exact_get(found[0]) or () if found else ()  # noqa: SLF001
    return read


def _trigrams(text: str) -> list[str]:
    padded = f"  {text} "
    return [padded[i:i + 3] for i in range(len(padded) - 2)]


def _char_ngrams(taxonomy: Taxonomy) -> Callable[[str], tuple[OccupationMatch, ...]]:
    keys = list(taxonomy._exact_ranks)  # noqa: SLF001
    frequency: dict[str, int] = defaultdict(int)
    grams = [set(_trigrams(key)) for key in keys]
    for key_grams in grams:
        for gram in key_grams:
            frequency[gram] += 1
    idf = {gram: math.log(len(keys) / count) for gram, count in frequency.items()}
    postings: dict[str, list[int]] = defaultdict(list)
    norms = []
    for index, key_grams in enumerate(grams):
        for gram in key_grams:
            postings[gram].append(index)
        norms.append(math.sqrt(sum(idf[gram] ** 2 for gram in key_grams)) or 1.0)

    def read(title: str) -> tuple[OccupationMatch, ...]:
        query = set(_trigrams(normalize_title(title)))
        scores: dict[int, float] = defaultdict(float)
        for gram in query:
            weight = idf.get(gram)
            if weight:
                for index in postings[gram]:
                    scores[index] += weight * weight
        if not scores:
            return ()
        best = max(scores, key=lambda index: scores[index] / norms[index])
        return taxonomy._exact_get(keys[best]) or ()  # noqa: SLF001
    return read


def main(
    titles: Annotated[int, typer.Option("--titles", min=10, help="how many titles to read")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="seeds the sample and the variants")] = 2,
) -> None:
    """Print, per technique, the share of titles understood and the time per title (p50, p95)."""
    command = "python scripts/bench_understanding.py " + shlex.join(sys.argv[1:])
    started = time.perf_counter()
    taxonomy = Taxonomy.load()
    load_s = time.perf_counter() - started
    tracemalloc.start()  # a second load, traced (tracing slows it down): what a process holds
    Taxonomy.load()
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()

    rng = Random(seed)
    pool = [(title, code) for code in taxonomy.codes() for title in taxonomy.occupation(code).alt_titles
            if is_holdout_title(title)]
    sample = rng.sample(pool, min(titles, len(pool)))
    variants = [(title_variant(title, rng)[0], code) for title, code in sample]

    techniques: dict[str, Callable[[str], tuple[OccupationMatch, ...]]] = {
        "overlap": _overlap(taxonomy),
        "shipped": lambda title: taxonomy.read_title(title).matches,
        "whole-title": _whole_title(taxonomy),
        "char-3grams": _char_ngrams(taxonomy),
    }
    typer.echo(f"\n{command}")
    typer.echo(f"shipped taxonomy: {len(taxonomy.codes())} occupations, loaded in {load_s:.2f} s, "
               f"{memory_mb:.0f} MB of Python objects")
    typer.echo(f"{len(variants)} held-out titles as typed variants (seed {seed}); each read once, caches empty")
    typer.echo(f"{'technique':<14}{'understood':>11}{'p50 ms':>9}{'p95 ms':>9}")
    shipped_p50 = 0.0
    for name, read in techniques.items():
        taxonomy._match_key.cache_clear()  # noqa: SLF001
        taxonomy._vocabulary.repair.cache_clear()  # noqa: SLF001
        normalize_title.cache_clear()
        right = 0
        times = []
        for title, code in variants:
            began = time.perf_counter()
            matches = read(title)
            times.append((time.perf_counter() - began) * 1000)
            right += bool(matches) and matches[0].code == code
        p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
        if name == "shipped":
            shipped_p50 = p50
        typer.echo(f"{name:<14}{right / len(variants):>10.1%}{p50:>9.2f}{p95:>9.2f}")
    verdict = "met" if shipped_p50 <= BUDGET_MS else "MISSED"
    typer.echo(f"target: understanding a title <= {BUDGET_MS:g} ms at p50: {verdict} ({shipped_p50:.2f} ms)")


if __name__ == "__main__":
    typer.run(main)
