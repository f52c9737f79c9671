"""Benchmark: `recmatch reindex` against a default `helpers.streaming_bulk`, same file, same node, one run.

Prints docs/s of each, the ratio (reindex / baseline) and the peak RSS of the reindex process.
Usage: python scripts/bench_reindex.py [--docs 1000000] [--rounds 1]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import orjson
import typer
from elasticsearch import helpers

from recmatch.config import get_settings
from recmatch.es import make_client
from recmatch.indexing import read_source

ROOT = Path(__file__).resolve().parents[1]


def ensure_source(docs: int) -> Path:
    """The benchmark file, generated once from the O*NET data and kept under var/."""
    path = ROOT / "var" / f"bench-onet-{docs}.jsonl.gz"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "generate_candidates.py"), "--source", "onet",
             "--count", str(docs), "--seed", "42", "--out", str(path)],
            check=True,
        )
    return path


def baseline(source: Path, index: str) -> float:
    """A default streaming_bulk into a plain index (dynamic mapping, default settings); returns docs/s."""
    es = make_client(get_settings())
    es.indices.create(index=index)
    start = time.perf_counter()
    actions = ({"_index": index, "_id": doc["candidate_id"], "_source": doc} for doc in
               (orjson.loads(raw) for _, raw, _ in read_source(source)))
    done = sum(1 for ok, _ in helpers.streaming_bulk(es, actions) if ok)
    es.indices.refresh(index=index)
    elapsed = time.perf_counter() - start
    es.indices.delete(index=index)
    return done / elapsed


def recmatch_reindex(source: Path, prefix: str, docs: int) -> tuple[float, float]:
    """`recmatch reindex` in its own process; returns (docs/s, peak RSS in MB) of that process."""
    env = {**os.environ, "RECMATCH_INDEX_PREFIX": prefix}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "recmatch.cli", "reindex", "--source", str(source), "--rejects", os.devnull],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    es = make_client(get_settings())
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    return docs / elapsed, peak_kb / 1024


def main(
    docs: Annotated[int, typer.Option(help="candidates to load")] = 1_000_000,
    rounds: Annotated[int, typer.Option(help="repeat the pair this many times")] = 1,
) -> None:
    source = ensure_source(docs)
    lines = sum(1 for _ in read_source(source))
    print(f"source: {source} ({lines:,} lines, {source.stat().st_size / 1e6:.0f} MB)")
    print(f"{'round':>5} {'baseline docs/s':>16} {'reindex docs/s':>15} {'ratio':>6}")
    ratios, peak = [], 0.0
    for round_number in range(1, rounds + 1):
        tag = uuid.uuid4().hex[:6]
        base = baseline(source, f"bench-baseline-{tag}")
        ours, peak_mb = recmatch_reindex(source, f"bench-{tag}", lines)
        peak = max(peak, peak_mb)
        ratios.append(ours / base)
        print(f"{round_number:>5} {base:>16,.0f} {ours:>15,.0f} {ours / base:>6.2f}")
    print(f"ratio reindex/baseline: {sorted(ratios)[len(ratios) // 2]:.2f} (median of {rounds})")
    print(f"peak RSS of the reindex process: {peak:.0f} MB")


if __name__ == "__main__":
    typer.run(main)
