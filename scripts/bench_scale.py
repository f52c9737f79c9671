"""Benchmark: the cost curve of recmatch against its pool size (100k, 1M, 5M generated candidates), in one run.

For each size, on the cluster RECMATCH_ES_URL names:
  load    a default `helpers.streaming_bulk` of the file, then `recmatch reindex` of the same file (docs/s, ratio,
          peak RSS of the reindex process), then the index size on disk (primaries, and with replicas);
  lists   for ROUNDS NYC job titles, in alternating order, a fresh GET .../matches against the raw search with the
          same final body (p50/p95, ratio), a cached page of the snapshot, and ES `took` of recmatch's query against
          the plain BM25 baseline query.
The pools are the first N lines of one generated file (seed 42), so each size holds the smaller ones. Results are
kept in a JSON file by (label, size), so a run on a 3-node cluster joins the one-node runs in the table and the plot.
Benchmark indices are deleted after each size unless --keep.
Usage: python scripts/bench_scale.py [--sizes 100000,1000000,5000000] [--label "1 node"] [--rounds 100]
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from elasticsearch import Elasticsearch, helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recmatch.core.config import get_settings  # noqa: E402
from recmatch.core.es import IndexNames, make_client  # noqa: E402
from recmatch.indexing.reindex import read_source  # noqa: E402
from recmatch.ops.cluster import prepare_cluster  # noqa: E402
from recmatch.ranking.query import baseline_query, build_query  # noqa: E402
from recmatch.ranking.understand import understand  # noqa: E402
from recmatch.text.taxonomy import get_taxonomy  # noqa: E402
from scripts.benchkit import ROOT, ensure_source, nyc_pipelines, served, tenant_with_key  # noqa: E402
from scripts.load import percentile  # noqa: E402

RESULTS = ROOT / "var" / "bench-scale.json"
PLOT = ROOT / "docs" / "scale.png"


def prefix_file(source: Path, lines: int) -> Path:
    """The first LINES lines of SOURCE, written once next to it."""
    path = source.with_name(f"{source.name.split('.')[0]}-first-{lines}.jsonl.gz")
    if not path.is_file():
        partial = path.with_suffix(".partial")
        with gzip.open(source, "rb") as src, gzip.open(partial, "wb", compresslevel=1) as out:
            for number, line in enumerate(src):
                if number == lines:
                    break
                out.write(line)
        partial.rename(path)
    return path


def baseline_load(es: Elasticsearch, source: Path) -> float:
    """docs/s of a default streaming_bulk into a plain index (dynamic mapping, default settings); then deleted."""
    index = f"bench-scale-baseline-{uuid.uuid4().hex[:6]}"
    es.indices.create(index=index)
    try:
        start = time.perf_counter()
        actions = ({"_index": index, "_id": doc["candidate_id"], "_source": doc}
                   for doc in (orjson.loads(raw) for _, raw, _ in read_source(source)))
        done = sum(1 for ok, _ in helpers.streaming_bulk(es, actions) if ok)
        es.indices.refresh(index=index)
        return done / (time.perf_counter() - start)
    finally:
        es.options(ignore_status=404).indices.delete(index=index)


def recmatch_load(source: Path, prefix: str, docs: int) -> tuple[float, float]:
    """`recmatch reindex` in its own process: docs/s and its own peak RSS in MB (wait4 reads that child's rusage)."""
    env = {**os.environ, "RECMATCH_INDEX_PREFIX": prefix}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "recmatch", "reindex", "--source", str(source), "--rejects", os.devnull],
        env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"recmatch reindex failed ({process.returncode})")
    return docs / (time.perf_counter() - start), usage.ru_maxrss / 1024


def index_size(es: Elasticsearch, alias: str) -> tuple[int, int]:
    """Bytes on disk of the candidates index: primaries, and all copies."""
    stats = es.indices.stats(index=alias, metric="store")["_all"]
    return stats["primaries"]["store"]["size_in_bytes"], stats["total"]["store"]["size_in_bytes"]


def measure_lists(settings: Any, es: Elasticsearch, rounds: int, pipelines: int) -> dict[str, list[float]]:
    """Fresh list vs raw search with the same body, cached page, took of ours vs BM25 (bench_matches' protocol)."""
    names = IndexNames(settings.index_prefix)
    key = tenant_with_key(settings, name="scale")
    taxonomy = get_taxonomy()
    specs = nyc_pipelines(pipelines)
    out: dict[str, list[float]] = {"fresh": [], "raw": [], "cached": [], "took_ours": [], "took_base": []}
    with served(settings) as (base, _):
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120)

        def api(crm_id: str) -> tuple[float, dict]:
            start = time.perf_counter()
            response = http.get(f"/v1/pipelines/{crm_id}/matches")
            response.raise_for_status()
            return time.perf_counter() - start, response.json()

        def raw(body: dict) -> tuple[float, dict]:
            start = time.perf_counter()
            response = es.search(index=names.candidates, body=body)
            return time.perf_counter() - start, response

        def explained(crm_id: str) -> dict:
            return http.get(f"/v1/pipelines/{crm_id}/matches", params={"explain": "true"}).json()["query"]

        for number in range(rounds + 5):  # 5 warm-up rounds, not counted
            crm_id = f"scale-{number % len(specs)}"
            spec = specs[number % len(specs)].model_copy(update={"radius_km": 40 + number % 400})  # a new version
            http.put(f"/v1/pipelines/{crm_id}", json=spec.model_dump()).raise_for_status()
            body = build_query(understanding=understand(pipeline=spec, taxonomy=taxonomy))
            if number % 2:
                api_s, listing = api(crm_id)
                raw_s, raw_response = raw(explained(crm_id))
            else:
                raw_s, raw_response = raw(body)
                api_s, listing = api(crm_id)
                final = explained(crm_id)
                if final != body:  # relaxed: the raw search again, with the body the API ended with
                    raw_s, raw_response = raw(final)
            start = time.perf_counter()
            http.get(f"/v1/pipelines/{crm_id}/matches", params={"page": 2, "snapshot": listing["snapshot"]})
            cached_s = time.perf_counter() - start
            base_took = es.search(index=names.candidates,
                                  body=baseline_query(title=spec.title, skills=spec.skills, size=125))["took"]
            if number >= 5:
                out["fresh"].append(api_s * 1000)
                out["raw"].append(raw_s * 1000)
                out["cached"].append(cached_s * 1000)
                out["took_ours"].append(raw_response["took"])
                out["took_base"].append(base_took)
        http.close()
    return out


def summarise(label: str, size: int, lists: dict[str, list[float]], load: dict[str, float]) -> dict[str, Any]:
    med = {name: statistics.median(values) for name, values in lists.items()}
    p95 = {name: percentile(values, 0.95) for name, values in lists.items()}
    return {
        "label": label, "size": size, "rounds": len(lists["fresh"]),
        "fresh_p50": med["fresh"], "fresh_p95": p95["fresh"], "raw_p50": med["raw"], "raw_p95": p95["raw"],
        "fresh_over_raw_p50": med["fresh"] / med["raw"], "fresh_over_raw_p95": p95["fresh"] / p95["raw"],
        "cached_p50": med["cached"], "cached_over_fresh_p50": med["cached"] / med["fresh"],
        "took_ours_p50": med["took_ours"], "took_base_p50": med["took_base"],
        "took_over_base_p50": med["took_ours"] / max(med["took_base"], 1),
        **load, "loadavg_1m": os.getloadavg()[0],
    }


def print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'cluster':8} {'pool':>9} {'fresh p50/p95 ms':>17} {'raw p50/p95 ms':>15} {'ratio p50':>9} "
              f"{'cached p50':>10} {'took ours/bm25':>14} {'reindex/bulk docs/s':>20} {'ratio':>5} {'RSS MB':>6} "
              f"{'bytes/cand':>10}")
    print(header)
    for row in sorted(results, key=lambda r: (r["label"], r["size"])):
        print(f"{row['label']:8} {row['size']:>9,} {row['fresh_p50']:>8.1f}/{row['fresh_p95']:<8.1f} "
              f"{row['raw_p50']:>7.1f}/{row['raw_p95']:<7.1f} {row['fresh_over_raw_p50']:>9.2f} "
              f"{row['cached_p50']:>10.1f} {row['took_ours_p50']:>6.0f}/{row['took_base_p50']:<7.0f} "
              f"{row['reindex_docs_s']:>9,.0f}/{row['baseline_docs_s']:<10,.0f} {row['reindex_over_baseline']:>5.2f} "
              f"{row['reindex_peak_rss_mb']:>6.0f} {row['primary_bytes'] / row['size']:>10.0f}")
    one = sorted((r for r in results if r["label"] == "1 node"), key=lambda r: r["size"])
    if len(one) >= 2:
        print(f"1 node, recmatch took {one[0]['size']:,} -> {one[-1]['size']:,}: "
              f"x{one[-1]['took_ours_p50'] / max(one[0]['took_ours_p50'], 1):.2f} (target <= 3)")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for label in sorted({r["label"] for r in results}):
        rows = sorted((r for r in results if r["label"] == label), key=lambda r: r["size"])
        sizes = [r["size"] for r in rows]
        style = "o-" if label == "1 node" else "s--"
        axis.plot(sizes, [r["fresh_p50"] for r in rows], style, label=f"fresh list p50 ({label})")
        axis.plot(sizes, [r["raw_p50"] for r in rows], style, alpha=0.6, label=f"raw search p50 ({label})")
        axis.plot(sizes, [r["took_ours_p50"] for r in rows], style, alpha=0.4, label=f"ES took p50 ({label})")
    axis.set_xscale("log")
    axis.set_xlabel("candidates in the pool")
    axis.set_ylabel("ms")
    axis.set_title("recmatch: latency against pool size (2 shared cores)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    print(f"plot: {path}")


def main(
    sizes: Annotated[str, typer.Option(help="pool sizes, comma-separated")] = "100000,1000000,5000000",
    label: Annotated[str, typer.Option(help="what the cluster is, e.g. '1 node' or '3 nodes'")] = "1 node",
    rounds: Annotated[int, typer.Option(help="measured list rounds per size")] = 100,
    pipelines: Annotated[int, typer.Option(help="distinct NYC job titles cycled through")] = 50,
    source_size: Annotated[int, typer.Option(help="lines of the generated file the pools are taken from")] = 5_000_000,
    results_file: Annotated[Path, typer.Option(help="results kept across runs")] = RESULTS,
    plot_file: Annotated[Path, typer.Option(help="the PNG written")] = PLOT,
    keep: Annotated[bool, typer.Option(help="keep the benchmark indices")] = False,
    only_report: Annotated[bool, typer.Option(help="print the table and plot from the results file")] = False,
) -> None:
    kept = json.loads(results_file.read_text()) if results_file.is_file() else []
    if not only_report:
        wanted = sorted(int(size) for size in sizes.split(","))
        source = ensure_source(source_size)
        base_settings = get_settings()
        es = make_client(base_settings)
        for size in wanted:
            path = prefix_file(source, size) if size < source_size else source
            settings = base_settings.model_copy(update={"index_prefix": f"benchscale{size}"})
            print(f"[{label}] {size:,} candidates from {path.name}", flush=True)
            try:
                baseline_docs_s = baseline_load(es, path)
                reindex_docs_s, rss = recmatch_load(path, settings.index_prefix, size)
                prepare_cluster(settings)
                primaries, total = index_size(es, IndexNames(settings.index_prefix).candidates)
                load = {"baseline_docs_s": baseline_docs_s, "reindex_docs_s": reindex_docs_s,
                        "reindex_over_baseline": reindex_docs_s / baseline_docs_s, "reindex_peak_rss_mb": rss,
                        "primary_bytes": primaries, "total_bytes": total}
                print(f"  load: {load}", flush=True)
                row = summarise(label, size, measure_lists(settings, es, rounds, pipelines), load)
            finally:
                if not keep:
                    es.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*",
                                                                 expand_wildcards="all")
            kept = [r for r in kept if (r["label"], r["size"]) != (label, size)] + [row]
            results_file.parent.mkdir(exist_ok=True)
            results_file.write_text(json.dumps(kept, indent=1) + "\n")
            print_table([row])
    print_table(kept)
    if kept:
        plot(kept, plot_file)


if __name__ == "__main__":
    typer.run(main)
