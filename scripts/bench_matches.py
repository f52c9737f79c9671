"""Benchmark: GET .../matches against the raw Elasticsearch search with the identical body, in one run.

Pipelines are real job titles from ../shared/data/nyc_jobs (New York, with skills from the taxonomy).
For each round a pipeline gets a new version (so its list is computed fresh), then, in alternating order:
  fresh   GET /v1/pipelines/{id}/matches          (auth, pipeline, ranking with relaxation, snapshot write)
  raw     es.search(body=<the same final body>)   (the official client, no API)
  cached  GET .../matches?page=2&snapshot=...      (a page of the stored snapshot)
and, on Elasticsearch, the `took` of our query versus the plain BM25 baseline query.
With --processes N, N API processes serve (like the workers of one deployment), and each visit of a pipeline goes to
the next one: a process never ranks a pipeline it ranked the visit before.
Prints p50/p95 of each and the ratios. Usage: python scripts/bench_matches.py [--docs 1000000] [--rounds 200]
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Annotated

import httpx
import typer
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recmatch.core.es import IndexNames, make_client  # noqa: E402
from recmatch.ranking.query import baseline_query, build_query  # noqa: E402
from recmatch.ranking.understand import understand  # noqa: E402
from recmatch.text.taxonomy import get_taxonomy  # noqa: E402
from scripts.benchkit import ensure_pool, nyc_pipelines, pool_settings, served, tenant_with_key  # noqa: E402
from scripts.load import percentile  # noqa: E402


def _timed_api(http: httpx.Client, crm_id: str) -> tuple[float, dict]:
    start = time.perf_counter()
    response = http.get(f"/v1/pipelines/{crm_id}/matches")
    response.raise_for_status()
    return time.perf_counter() - start, response.json()


def _timed_raw(es: Elasticsearch, index: str, body: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    response = es.search(index=index, body=body)
    return time.perf_counter() - start, response


def main(
    docs: Annotated[int, typer.Option(help="candidates in the index")] = 1_000_000,
    rounds: Annotated[int, typer.Option(help="measured rounds")] = 200,
    pipelines: Annotated[int, typer.Option(help="distinct pipelines cycled through")] = 50,
    keep_index: Annotated[bool, typer.Option(help="keep the benchmark index for the next run")] = True,
    prefix: Annotated[str | None, typer.Option(help="index prefix (default: benchm<docs>)")] = None,
    processes: Annotated[int, typer.Option(min=1, help="API processes; a pipeline's visits go to each in turn")] = 1,
) -> None:
    settings = pool_settings(docs)
    if prefix is not None:
        settings = settings.model_copy(update={"index_prefix": prefix})
    names = IndexNames(settings.index_prefix)
    es = make_client(settings)
    print(f"index: {names.candidates} with {ensure_pool(settings, docs):,} candidates")
    key = tenant_with_key(settings, name="bench")
    with ExitStack() as stack:
        bases = [stack.enter_context(served(settings))[0] for _ in range(processes)]
        clients = [httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
                   for base in bases]
        specs = nyc_pipelines(pipelines)
        taxonomy = get_taxonomy()
        fresh, raw, cached, took_ours, took_base, mismatched = [], [], [], [], [], 0
        for number in range(rounds + 5):  # the first 5 rounds warm up and are not counted
            spec = specs[number % len(specs)]
            crm_id = f"bench-{number % len(specs)}"
            http = clients[number // len(specs) % processes]
            # A new radius each round makes a new version, so the list is computed fresh.
            spec = spec.model_copy(update={"radius_km": 40 + number % 400})
            http.put(f"/v1/pipelines/{crm_id}", json=spec.model_dump()).raise_for_status()
            understanding = understand(pipeline=spec, taxonomy=taxonomy)
            timed_api = partial(_timed_api, http, crm_id)
            timed_raw = partial(_timed_raw, es, names.candidates)
            body = build_query(understanding=understanding)
            if number % 2:
                api_seconds, listing = timed_api()
                explained = http.get(f"/v1/pipelines/{crm_id}/matches", params={"explain": "true"}).json()["query"]
                raw_seconds, raw_response = timed_raw(explained)
            else:
                raw_seconds, raw_response = timed_raw(body)
                api_seconds, listing = timed_api()
                explained = http.get(f"/v1/pipelines/{crm_id}/matches", params={"explain": "true"}).json()["query"]
                if explained != body:  # relaxed: time the raw search again with the body the API ended with
                    mismatched += 1
                    raw_seconds, raw_response = timed_raw(explained)
            start = time.perf_counter()
            http.get(f"/v1/pipelines/{crm_id}/matches", params={"page": 2, "snapshot": listing["snapshot"]})
            cached_seconds = time.perf_counter() - start
            base_took = es.search(index=names.candidates,
                                  body=baseline_query(title=spec.title, skills=spec.skills, size=125,
                                                      understanding=understanding))["took"]
            if number >= 5:
                fresh.append(api_seconds * 1000)
                raw.append(raw_seconds * 1000)
                cached.append(cached_seconds * 1000)
                took_ours.append(raw_response["took"])
                took_base.append(base_took)
    if not keep_index:
        es.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*", expand_wildcards="all")
    rows = [("fresh list (API)", fresh), ("raw search, same body", raw), ("cached snapshot page (API)", cached),
            ("ES took: recmatch query", took_ours), ("ES took: BM25 baseline", took_base)]
    print(f"{rounds} rounds over {len(specs)} NYC job titles on {processes} API process(es); "
          f"{mismatched} relaxed lists re-timed with their final body")
    print(f"{'':30} {'p50 ms':>8} {'p95 ms':>8}")
    for label, values in rows:
        print(f"{label:30} {statistics.median(values):8.1f} {percentile(values, 0.95):8.1f}")
    print(f"fresh API / raw search, p50: {statistics.median(fresh) / statistics.median(raw):.2f} (target <= 1.3)")
    print(f"fresh API / raw search, p95: {percentile(fresh, 0.95) / percentile(raw, 0.95):.2f}")
    print(f"cached page / fresh list, p50: {statistics.median(cached) / statistics.median(fresh):.2f}")
    print(f"ES took, recmatch / BM25, p50: {statistics.median(took_ours) / max(statistics.median(took_base), 1):.2f}")


if __name__ == "__main__":
    typer.run(main)
