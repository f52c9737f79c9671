"""Load test: many concurrent widget sessions against `recmatch serve --workers N` on loopback.

Each session is what a recruiter does in the framed widget: the CRM mints a widget token, the widget opens the
list, pages through it under its snapshot, saves one candidate and dismisses another (each with an
Idempotency-Key), and reads what was learned. Bounded in sessions and seconds; loopback only.
Reports throughput, p50/p95/p99 by request kind, errors, lost actions (acknowledged but not stored) and the
peak RSS of each API process. Usage: python scripts/load.py [--docs 1000000] [--sessions 400] [--concurrency 32]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import httpx
import psutil
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recmatch.core.es import IndexNames, make_client  # noqa: E402
from scripts.benchkit import ensure_pool, nyc_pipelines, pool_settings, served, tenant_with_key  # noqa: E402


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    acknowledged: list[tuple[str, str, str]] = field(default_factory=list)  # (pipeline, candidate, status)

    async def call(self, kind: str, client: httpx.AsyncClient, method: str, url: str,
                   **kwargs) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.errors[f"{kind}: {type(exc).__name__}"] += 1
            return None
        self.latencies[kind].append((time.perf_counter() - start) * 1000)
        if response.status_code >= 400:
            self.errors[f"{kind}: {response.status_code} {response.json().get('type', '')}"] += 1
            return None
        return response


async def session(number: int, *, base: str, key: str, pipelines: list[str], tally: Tally) -> None:
    """One recruiter opening a pipeline in the CRM and working its list."""
    crm_id = pipelines[number % len(pipelines)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as crm:
        minted = await tally.call("widget-token", crm, "POST", f"/v1/pipelines/{crm_id}/widget-token",
                                  headers={"Authorization": f"Bearer {key}"})
    if minted is None:
        return
    headers = {"Authorization": f"Bearer {minted.json()['token']}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as widget:
        first = await tally.call("open list", widget, "GET", f"/v1/pipelines/{crm_id}/matches")
        if first is None:
            return
        listing = first.json()
        candidates = list(listing["candidates"])
        for page in (2, 3):
            more = await tally.call("page", widget, "GET", f"/v1/pipelines/{crm_id}/matches",
                                    params={"page": page, "snapshot": listing["snapshot"]})
            if more is not None:
                candidates += more.json()["candidates"]
        open_ones = [c for c in candidates if c["status"] is None]
        for candidate, action, body in zip(open_ones[number % 7::9][:2], ("save", "dismiss"),
                                           (None, {"reason": "title"}), strict=False):
            url = f"/v1/pipelines/{crm_id}/candidates/{candidate['candidate_id']}/{action}"
            done = await tally.call(action, widget, "POST", url, json=body,
                                    headers={"Idempotency-Key": uuid.uuid4().hex})
            if done is not None:
                tally.acknowledged.append((crm_id, candidate["candidate_id"], done.json()["status"]))
        await tally.call("learned", widget, "GET", f"/v1/pipelines/{crm_id}/learned")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def watch_rss(root: psutil.Process, peaks: dict[int, float], stop: threading.Event) -> None:
    """Peak RSS (MB) of the server and each of its worker processes, sampled every 0.2 s."""
    while not stop.is_set():
        try:
            for process in [root, *root.children(recursive=True)]:
                peaks[process.pid] = max(peaks.get(process.pid, 0.0), process.memory_info().rss / 2**20)
        except psutil.Error:
            pass
        stop.wait(0.2)


def lost_actions(settings, tenant_id: str, acknowledged: list[tuple[str, str, str]]) -> int:
    """Acknowledged actions whose status is not stored (read by id, in real time)."""
    es = make_client(settings)
    names = IndexNames(settings.index_prefix)
    lost = 0
    for start in range(0, len(acknowledged), 500):
        chunk = acknowledged[start:start + 500]
        ids = [f"{tenant_id}:{crm_id}:{candidate_id}" for crm_id, candidate_id, _ in chunk]
        docs = es.mget(index=names.actions, ids=ids)["docs"]
        lost += sum(1 for doc, (_, _, status) in zip(docs, chunk, strict=True)
                    if not doc.get("found") or doc["_source"]["status"] not in (status, "saved", "dismissed"))
    return lost


def main(
    docs: Annotated[int, typer.Option(help="candidates in the index")] = 1_000_000,
    sessions: Annotated[int, typer.Option(help="widget sessions in all")] = 400,
    concurrency: Annotated[int, typer.Option(help="sessions at once")] = 32,
    workers: Annotated[int, typer.Option(help="API processes")] = 2,
    pipelines: Annotated[int, typer.Option(help="distinct pipelines")] = 40,
    seconds: Annotated[float, typer.Option(help="stop starting sessions after this long")] = 300.0,
) -> None:
    settings = pool_settings(docs)
    print(f"pool: {ensure_pool(settings, docs):,} candidates in {settings.index_prefix}-candidates")
    key = tenant_with_key(settings, name=f"load-{uuid.uuid4().hex[:6]}")
    tenant_id = key.removeprefix("rm_").split("_", 1)[0]
    specs = nyc_pipelines(pipelines)
    with served(settings, workers=workers) as (base, server):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as crm:
            crm_ids = []
            for index, spec in enumerate(specs):
                crm_id = f"load-{index}"
                crm.put(f"/v1/pipelines/{crm_id}", json=spec.model_dump()).raise_for_status()
                crm_ids.append(crm_id)
        tally, peaks, stop = Tally(), {}, threading.Event()
        watcher = threading.Thread(target=watch_rss, args=(psutil.Process(server.pid), peaks, stop), daemon=True)
        watcher.start()

        async def run() -> float:
            gate, deadline, started = asyncio.Semaphore(concurrency), time.monotonic() + seconds, time.perf_counter()

            async def bounded(number: int) -> None:
                async with gate:
                    if time.monotonic() < deadline:
                        await session(number, base=base, key=key, pipelines=crm_ids, tally=tally)

            await asyncio.gather(*(bounded(number) for number in range(sessions)))
            return time.perf_counter() - started

        elapsed = asyncio.run(run())
        stop.set()
        watcher.join()
    requests = sum(len(values) for values in tally.latencies.values()) + sum(tally.errors.values())
    print(f"{sessions} sessions, {concurrency} at once, {workers} API workers: {requests} requests in "
          f"{elapsed:.1f} s = {requests / elapsed:.1f} requests/s")
    print(f"{'request':14} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind, values in tally.latencies.items():
        p95, p99 = (percentile(values, share) for share in (0.95, 0.99))
        print(f"{kind:14} {len(values):6} {statistics.median(values):8.1f} {p95:8.1f} {p99:8.1f}")
    print(f"errors: {sum(tally.errors.values())} {dict(tally.errors) or ''}")
    lost = lost_actions(settings, tenant_id, tally.acknowledged)
    print(f"actions acknowledged: {len(tally.acknowledged)}, lost: {lost}")
    rss = ", ".join(f"pid {pid}: {mb:.0f}" for pid, mb in sorted(peaks.items()))
    print(f"peak RSS per API process (MB): {rss}")


if __name__ == "__main__":
    typer.run(main)
