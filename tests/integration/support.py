"""Helpers for integration tests: async service calls from sync tests, tenants with one seat per license."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from recmatch.accounts import operators
from recmatch.accounts import service as accounts
from recmatch.core.config import Settings
from recmatch.core.es import run_with_async_client
from recmatch.indexing import reindex as indexing
from recmatch.ops.cluster import prepare_cluster

ROOT = Path(__file__).resolve().parents[2]


run_async = run_with_async_client  # tests are synchronous: an async service call with its own client


@dataclass
class Seats:
    tenant: accounts.Tenant
    recruiter: str
    other_recruiter: str
    admin: str
    collaborator: str

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def make_tenant(settings: Settings, **flags: Any) -> Seats:
    async def work(es, names):
        tenant = await accounts.create_tenant(es=es, names=names, name=f"Acme {uuid.uuid4().hex[:4]}",
                                              crm_provider="demo-crm", crm_origins=["https://crm.example.com"], **flags)
        keys = {}
        for role, email, license in (
            ("recruiter", "rita@example.com", accounts.License.recruiter),
            ("other_recruiter", "otto@example.com", accounts.License.recruiter),
            ("admin", "ada@example.com", accounts.License.admin),
            ("collaborator", "carl@example.com", accounts.License.hiring_collaborator),
        ):
            _, keys[role] = await accounts.create_seat(es=es, names=names, tenant_id=tenant.tenant_id, email=email,
                                                       license=license)
        return Seats(tenant=tenant, **keys)

    return run_async(settings, work)


def make_operator(settings: Settings) -> str:
    """An operator key (operators alone write the shared candidate pool)."""
    async def work(es, names):
        _, key = await operators.create_operator(es=es, names=names, email="olga.operator@example.com")
        return key

    return run_async(settings, work)


def load_demo_pool(settings: Settings, es: Elasticsearch, directory: Path, *, count: int = 3000) -> Path:
    """COUNT demo candidates from the generator, loaded through a real reindex into SETTINGS' prefix."""
    source = directory / "candidates.jsonl"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_candidates.py"), "--source", "demo",
                    "--count", str(count), "--seed", "11", "--out", str(source)], check=True, capture_output=True)
    prepare_cluster(settings)
    indexing.reindex(es=es, settings=settings, source=source, rejects_path=source.with_suffix(".rejects"))
    return source
