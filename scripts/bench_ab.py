"""Benchmark: the API of two checkouts, A against B, on the same pool, alternated round by round.

For a change to the API's own cost, which bench_matches' ratio to the raw search cannot tell from the noise of a
shared machine: two API processes serve the same pool, A from another working tree (e.g. `git worktree add
/tmp/before HEAD~1`), B from this checkout (or --b). Each round gives a pipeline a new version on both, times a
fresh list and then a cached page on each (A first on odd rounds, B first on even ones) and the raw search with
the same body. Rounds whose list relaxed on either side are left out of the fresh figures (a relaxed list searches
more than once, so it would add the search's noise to the API's).
Prints p50 of each, B/A, and each against the raw search.
Usage: python scripts/bench_ab.py --a /tmp/before [--b .] [--docs 100000] [--rounds 200]
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import httpx
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recmatch.core.es import IndexNames, make_client  # noqa: E402
from recmatch.ranking.query import build_query  # noqa: E402
from recmatch.ranking.understand import understand  # noqa: E402
from recmatch.text.taxonomy import get_taxonomy  # noqa: E402
from scripts.benchkit import ROOT, ensure_pool, nyc_pipelines, pool_settings, served, tenant_with_key  # noqa: E402

WARM_UP = 10


def _ms(http: httpx.Client, path: str, **params: object) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = http.get(path, params=params)
    response.raise_for_status()
    return (time.perf_counter() - start) * 1000, response


def main(
    a: Annotated[Path, typer.Option(help="checkout A (the baseline), e.g. a `git worktree` of the commit before")],
    b: Annotated[Path, typer.Option(help="checkout B")] = ROOT,
    docs: Annotated[int, typer.Option(help="candidates in the pool (loaded once, kept)")] = 100_000,
    rounds: Annotated[int, typer.Option(help="measured rounds")] = 200,
    pipelines: Annotated[int, typer.Option(help="distinct NYC job titles cycled through")] = 50,
) -> None:
    settings = pool_settings(docs)
    names = IndexNames(settings.index_prefix)
    es = make_client(settings)
    print(f"index: {names.candidates} with {ensure_pool(settings, docs):,} candidates")
    key = tenant_with_key(settings, name="bench-ab")
    specs, taxonomy = nyc_pipelines(pipelines), get_taxonomy()
    fresh: dict[str, list[float]] = {"A": [], "B": []}
    cached: dict[str, list[float]] = {"A": [], "B": []}
    raw: list[float] = []
    with ExitStack() as stack:
        clients = {side: httpx.Client(base_url=stack.enter_context(served(settings, checkout=tree))[0], timeout=60,
                                      headers={"Authorization": f"Bearer {key}"})
                   for side, tree in (("A", a), ("B", b))}
        for number in range(rounds + WARM_UP):
            spec = specs[number % len(specs)].model_copy(update={"radius_km": 40 + number % 400})  # a new version
            crm_id = f"ab-{number % len(specs)}"
            row: dict[str, tuple[float, float, bool]] = {}
            for side in ("A", "B") if number % 2 else ("B", "A"):
                http = clients[side]
                http.put(f"/v1/pipelines/{crm_id}", json=spec.model_dump()).raise_for_status()
                fresh_ms, response = _ms(http, f"/v1/pipelines/{crm_id}/matches")
                listing = response.json()
                cached_ms, _ = _ms(http, f"/v1/pipelines/{crm_id}/matches", page=2, snapshot=listing["snapshot"])
                row[side] = (fresh_ms, cached_ms, bool(listing["relaxation"]))
            body = build_query(understanding=understand(pipeline=spec, taxonomy=taxonomy))
            start = time.perf_counter()
            es.search(index=names.candidates, body=body)
            raw_ms = (time.perf_counter() - start) * 1000
            if number < WARM_UP:
                continue
            for side in ("A", "B"):
                cached[side].append(row[side][1])
            if not (row["A"][2] or row["B"][2]):
                raw.append(raw_ms)
                for side in ("A", "B"):
                    fresh[side].append(row[side][0])
    if not raw:
        raise SystemExit("every round relaxed: no fresh figures (try more --pipelines)")
    raw_p50 = statistics.median(raw)
    print(f"{rounds} rounds over {len(specs)} NYC job titles; {len(raw)} with no relaxation on either side")
    print(f"{'':24} {'A':>9} {'B':>9} {'B/A':>6}")
    for what, values in (("fresh list p50 ms", fresh), ("cached page p50 ms", cached)):
        a_p50, b_p50 = statistics.median(values["A"]), statistics.median(values["B"])
        print(f"{what:24} {a_p50:9.2f} {b_p50:9.2f} {b_p50 / a_p50:6.2f}")
    print(f"raw search p50 ms         {raw_p50:.2f}")
    print(f"fresh / raw, p50: A {statistics.median(fresh['A']) / raw_p50:.2f}, "
          f"B {statistics.median(fresh['B']) / raw_p50:.2f}")
    print(f"A: {a.resolve()}\nB: {b.resolve()}")


if __name__ == "__main__":
    typer.run(main)
