"""Candidates a tenant's CRM already holds: the sole owner of the crm_holdings index.

The CRM syncs the member ids (recmatch candidate ids, as exports send them) and profile URLs it has. They are left
out of that tenant's lists from the next list on (a recommendation should bring someone new, and a slot given to
a known person is a slot lost), and a "Refresh list" ranks again when the CRM synced since the list was made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from elasticsearch import AsyncElasticsearch
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from recmatch.core.es import IndexNames, map_es_errors
from recmatch.core.models import CandidateId

HoldingKind = Literal["member_id", "profile_url"]
HELD_AT_MOST = 10_000  # per tenant: what one list read fetches to leave out


class HeldCandidate(BaseModel):
    """One candidate the CRM holds: by member id, by profile URL, or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"member_id": "c-000123"}, {"profile_url": "https://example.org/in/ada-park"}]})

    member_id: CandidateId | None = Field(default=None, description="the candidate id recmatch exports carry")
    profile_url: AnyHttpUrl | None = None

    @model_validator(mode="after")
    def _names_someone(self) -> HeldCandidate:
        if self.member_id is None and self.profile_url is None:
            raise ValueError("give member_id, profile_url or both")
        return self

    def keys(self) -> list[tuple[HoldingKind, str]]:
        keys: list[tuple[HoldingKind, str]] = []
        if self.member_id is not None:
            keys.append(("member_id", self.member_id))
        if self.profile_url is not None:
            keys.append(("profile_url", normalize_url(str(self.profile_url))))
        return keys


def normalize_url(url: str) -> str:
    """One spelling of a profile URL: no trailing slash, query or fragment; host in lower case."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    path = path.split("?")[0].split("#")[0].rstrip("/")
    return f"{scheme.lower()}://{host.lower()}/{path}" if path else f"{scheme.lower()}://{host.lower()}"


def _doc_id(tenant_id: str, kind: HoldingKind, value: str) -> str:
    return f"{tenant_id}:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


async def hold(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str,
               candidates: list[HeldCandidate]) -> int:
    """Record that the tenant's CRM holds CANDIDATES (idempotent); returns how many keys were written."""
    now = datetime.now(UTC).isoformat()
    operations: list[dict] = []
    for candidate in candidates:
        for kind, value in candidate.keys():
            index = names.crm_holdings
            operations.append({"index": {"_index": index, "_id": _doc_id(tenant_id, kind, value)}})
            operations.append({"tenant_id": tenant_id, "kind": kind, "value": value, "synced_at": now,
                               **({"candidate_id": value} if kind == "member_id" else {})})
    if not operations:
        return 0
    with map_es_errors("recording the CRM's candidates"):
        await es.bulk(operations=operations, refresh="wait_for")
    return len(operations) // 2


async def release(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str,
                  candidates: list[HeldCandidate]) -> int:
    """Forget that the CRM holds CANDIDATES (they may be recommended again); returns how many keys were removed."""
    operations = [{"delete": {"_index": names.crm_holdings, "_id": _doc_id(tenant_id, kind, value)}}
                  for candidate in candidates for kind, value in candidate.keys()]
    if not operations:
        return 0
    with map_es_errors("forgetting the CRM's candidates"):
        answer = await es.bulk(operations=operations, refresh="wait_for")
    return sum(item["delete"].get("result") == "deleted" for item in answer["items"])


async def synced_since(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, since: datetime) -> bool:
    """Whether the tenant's CRM synced candidates it holds after SINCE."""
    query = {"bool": {"filter": [{"term": {"tenant_id": tenant_id}},
                                 {"range": {"synced_at": {"gt": since.isoformat()}}}]}}
    with map_es_errors("reading the CRM's candidates"):
        return (await es.count(index=names.crm_holdings, query=query))["count"] > 0


@dataclass(frozen=True)
class Holdings:
    """What a tenant's CRM holds, as a list read needs it."""

    member_ids: frozenset[str]
    profile_urls: frozenset[str]
    synced_at: datetime | None  # the latest sync

    def holds(self, candidate_id: str, profile_url: str | None) -> bool:
        return candidate_id in self.member_ids or (
            profile_url is not None and normalize_url(profile_url) in self.profile_urls)

    def same_keys(self, other: Holdings) -> bool:
        """Whether OTHER holds exactly the same candidates (the sync time aside)."""
        return self.member_ids == other.member_ids and self.profile_urls == other.profile_urls

    def __len__(self) -> int:
        return len(self.member_ids) + len(self.profile_urls)


async def holdings(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str) -> Holdings:
    """Every key the tenant's CRM synced (at most HELD_AT_MOST)."""
    with map_es_errors("reading the CRM's candidates"):
        found = await es.search(index=names.crm_holdings, size=HELD_AT_MOST, source=["kind", "value"],
                                query={"term": {"tenant_id": tenant_id}}, sort=[{"synced_at": "desc"}])
    hits = found["hits"]["hits"]
    members = frozenset(hit["_source"]["value"] for hit in hits if hit["_source"]["kind"] == "member_id")
    urls = frozenset(hit["_source"]["value"] for hit in hits if hit["_source"]["kind"] == "profile_url")
    latest = hits[0]["sort"][0] if hits else None
    return Holdings(member_ids=members, profile_urls=urls,
                    synced_at=datetime.fromtimestamp(latest / 1000, UTC) if latest is not None else None)
