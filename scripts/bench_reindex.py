"""Benchmark: `recmatch reindex` against a default `helpers.streaming_bulk`, same file, same node, one run.

Prints docs/s of each, the ratio (reindex / baseline) and the peak RSS of the reindex process; then what a document
cost in CPU time in the client and in Elasticsearch (all the node's work during the load), which depends much less
than docs/s on what else the machine runs, and the load average that says how busy it was.
Usage: python scripts/bench_reindex.py [--docs 1000000] [--rounds 1]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import orjson
import typer
from elasticsearch import Elasticsearch, helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recmatch.core.config import get_settings  # noqa: E402
from recmatch.core.es import make_client  # noqa: E402
from recmatch.indexing.reindex import read_source  # noqa: E402
from scripts.benchkit import ensure_source  # noqa: E402


@dataclass
class Run:
    """One load: its throughput and what it cost in CPU seconds."""

    docs_per_second: float
    client_cpu: float
    es_cpu: float


def es_cpu_seconds(es: Elasticsearch) -> float:
    """CPU time the cluster's nodes have used so far."""
    stats = es.nodes.stats(metric="process", filter_path="nodes.*.process.cpu.total_in_millis")
    return sum(node["process"]["cpu"]["total_in_millis"] for node in stats["nodes"].values()) / 1000


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline(source: Path, index: str) -> Run:
    """A default streaming_bulk into a plain index (dynamic mapping, default settings)."""
    es = make_client(get_settings())
    es.indices.create(index=index)
    es_start, cpu_start, start = es_cpu_seconds(es), time.process_time(), time.perf_counter()
    actions = ({"_index": index, "_id": doc["candidate_id"], "_source": doc} for doc in
               (orjson.loads(raw) for _, raw, _ in read_source(source)))
    done = sum(1 for ok, _ in helpers.streaming_bulk(es, actions) if ok)
    es.indices.refresh(index=index)
    elapsed = time.perf_counter() - start
    run = Run(done / elapsed, time.process_time() - cpu_start, es_cpu_seconds(es) - es_start)
    es.indices.delete(index=index)
    return run


def recmatch_reindex(source: Path, prefix: str, docs: int) -> tuple[Run, float]:
    """`recmatch reindex` in its own process; returns its run and its peak RSS in MB."""
    es = make_client(get_settings())
    env = {**os.environ, "RECMATCH_INDEX_PREFIX": prefix}
    es_start, cpu_start, start = es_cpu_seconds(es), children_cpu_seconds(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "recmatch", "reindex", "--source", str(source), "--rejects", os.devnull],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    run = Run(docs / elapsed, children_cpu_seconds() - cpu_start, es_cpu_seconds(es) - es_start)
    # The reindex is the only child this script waits for: the largest RSS among them is its own.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    return run, peak_kb / 1024


def _per_doc(runs: list[Run], docs: int) -> str:
    client = statistics.median(run.client_cpu for run in runs) / docs * 1e6
    es = statistics.median(run.es_cpu for run in runs) / docs * 1e6
    return f"{client:.0f} + {es:.0f} = {client + es:.0f} µs"


def main(
    docs: Annotated[int, typer.Option(help="candidates to load")] = 1_000_000,
    rounds: Annotated[int, typer.Option(help="repeat the pair this many times")] = 1,
) -> None:
    source = ensure_source(docs)
    lines = sum(1 for _ in read_source(source))
    print(f"source: {source} ({lines:,} lines, {source.stat().st_size / 1e6:.0f} MB)")
    print(f"{'round':>5} {'baseline docs/s':>16} {'reindex docs/s':>15} {'ratio':>6}")
    ratios, peak, bases, ours = [], 0.0, [], []
    for round_number in range(1, rounds + 1):
        tag = uuid.uuid4().hex[:6]
        base = baseline(source, f"bench-baseline-{tag}")
        run, peak_mb = recmatch_reindex(source, f"bench-{tag}", lines)
        bases.append(base)
        ours.append(run)
        peak = max(peak, peak_mb)
        ratios.append(run.docs_per_second / base.docs_per_second)
        print(f"{round_number:>5} {base.docs_per_second:>16,.0f} {run.docs_per_second:>15,.0f} {ratios[-1]:>6.2f}")
    print(f"ratio reindex/baseline: {statistics.median(ratios):.2f} (median of {rounds})")
    print(f"peak RSS of the reindex process: {peak:.0f} MB")
    print(f"CPU per document, client + Elasticsearch: baseline {_per_doc(bases, lines)}, "
          f"reindex {_per_doc(ours, lines)}")
    print("load average over 1, 5, 15 minutes: {:.1f}, {:.1f}, {:.1f} on {} cores".format(*os.getloadavg(),
                                                                                       os.cpu_count()))


if __name__ == "__main__":
    typer.run(main)
