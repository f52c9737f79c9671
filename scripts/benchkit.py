"""Shared set-up of the benchmark and load scripts: a loaded pool, a tenant with a key, a served API."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from elasticsearch import AsyncElasticsearch

from recmatch.accounts import service as accounts
from recmatch.core.config import Settings, get_settings
from recmatch.core.es import IndexNames, make_client, run_with_async_client
from recmatch.core.models import PipelineIn
from recmatch.indexing import reindex as indexing
from recmatch.ops.cluster import prepare_cluster
from recmatch.text.taxonomy import get_taxonomy

ROOT = Path(__file__).resolve().parents[1]
NYC_JOBS = ROOT.parent / "shared" / "data" / "nyc_jobs" / "NYC_Jobs.csv"


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


def pool_settings(docs: int) -> Settings:
    """Settings of the benchmark deployment holding DOCS candidates (its own prefix, reused across runs)."""
    return get_settings().model_copy(update={"index_prefix": f"benchm{docs}"})


def ensure_pool(settings: Settings, docs: int) -> int:
    """Load DOCS generated candidates unless the pool already holds them; returns the count."""
    names = IndexNames(settings.index_prefix)
    es = make_client(settings)
    prepare_cluster(settings)
    if es.count(index=names.candidates)["count"] < docs * 0.99:
        print(f"loading {docs:,} candidates into {names.candidates} ...", flush=True)
        indexing.reindex(es=es, settings=settings, source=ensure_source(docs), rejects_path=Path(os.devnull))
    return int(es.count(index=names.candidates)["count"])


def tenant_with_key(settings: Settings, *, name: str) -> str:
    """A new tenant with one recruiter seat; returns the seat's API key."""

    async def create(es: AsyncElasticsearch, names: IndexNames) -> str:
        tenant = await accounts.create_tenant(es=es, names=names, name=name, crm_provider="bench")
        _, api_key = await accounts.create_seat(es=es, names=names, tenant_id=tenant.tenant_id,
                                                email=f"{name}@example.com", license=accounts.License.recruiter)
        return api_key

    return run_with_async_client(settings, create)


def nyc_pipelines(limit: int) -> list[PipelineIn]:
    """Distinct real job titles from NYC Jobs, located in New York, with the skills their occupation lists."""
    taxonomy = get_taxonomy()
    seen: set[str] = set()
    result: list[PipelineIn] = []
    with NYC_JOBS.open(encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            title = row["Business Title"].strip()[:200]
            if not title or title.lower() in seen:
                continue
            seen.add(title.lower())
            matches = taxonomy.match_title(title)
            skills = [name for name, _ in taxonomy.skills(matches[0].code)[:4]] if matches else []
            result.append(PipelineIn(title=title, locations=["New York, NY"], skills=skills, radius_km=40))
            if len(result) == limit:
                break
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(settings: Settings, *, workers: int = 1,
           checkout: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`recmatch serve` in a subprocess on a free loopback port, ready; stopped on exit. With CHECKOUT (another
    working tree of this repository, e.g. from `git worktree add`), it serves that tree's code."""
    port = free_port()
    env = {**os.environ, "RECMATCH_INDEX_PREFIX": settings.index_prefix}
    if checkout is not None:
        if not (checkout / "src" / "recmatch").is_dir():
            raise ValueError(f"{checkout} is not a recmatch checkout (no src/recmatch)")
        env["PYTHONPATH"] = str(checkout.resolve() / "src")  # ahead of this checkout's editable install
    server = subprocess.Popen(
        [sys.executable, "-m", "recmatch", "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"recmatch serve exited with {server.returncode}")
            time.sleep(0.3)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)
