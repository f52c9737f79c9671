"""Tenants, seats, API keys, licenses and the feature gate of Recommended Matches."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cachetools import TTLCache
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel, Field, SecretStr

from recmatch.core.errors import InvalidInput, NotAuthenticated, NotFound, NotPermitted, SearchUnavailable
from recmatch.core.es import IndexNames, ignoring, map_es_errors

KEY_PREFIX = "rm_"
NOT_A_KEY = "this API key is not valid: it is unknown or was revoked (keys start with rm_)"
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9\-]{0,39}")


class License(StrEnum):
    recruiter = "recruiter"
    hiring_collaborator = "hiring_collaborator"
    admin = "admin"


class LicenseNotEligible(NotPermitted):
    """The seat's license does not include Recommended Matches."""


class FeatureNotEnabled(NotPermitted):
    """The tenant's CRM integration is off, or its CRM does not support Recommended Matches."""


class Tenant(BaseModel):
    tenant_id: str
    name: str
    crm_provider: str
    integration_enabled: bool = True
    crm_supports_matches: bool = True
    webhook_url: str | None = None
    messaging_webhook_url: str | None = None
    webhook_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    crm_origins: list[str] = Field(default_factory=list)
    webhook_format: str = Field(default="recmatch", description="how its webhooks are shaped (webhooks.formats)")

    @property
    def matches_enabled(self) -> bool:
        return self.integration_enabled and self.crm_supports_matches


class Seat(BaseModel):
    seat_id: str
    tenant_id: str
    email: str
    license: License


@dataclass(frozen=True)
class Principal:
    """Who is calling: a seat of a tenant; through the framed widget, only for one pipeline."""

    tenant: Tenant
    seat: Seat
    pipeline_scope: str | None = None

    def check_scope(self, crm_pipeline_id: str) -> None:
        """A widget token acts on its own pipeline only."""
        if self.pipeline_scope is not None and self.pipeline_scope != crm_pipeline_id:
            raise NotPermitted(f"this widget token is for pipeline {self.pipeline_scope!r} only")

    @property
    def is_admin(self) -> bool:
        return self.seat.license is License.admin


def hash_key(api_key: str) -> str:
    """The stored form of an API key (keys are random 256-bit tokens, so a plain SHA-256 suffices)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def _tenant_doc(tenant: Tenant) -> dict[str, Any]:
    return {
        "kind": "tenant",
        **tenant.model_dump(exclude={"webhook_secret"}),
        "webhook_secret": tenant.webhook_secret.get_secret_value(),
        "created_at": datetime.now(UTC).isoformat(),
    }


async def create_tenant(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    name: str,
    crm_provider: str,
    integration_enabled: bool = True,
    crm_supports_matches: bool = True,
    webhook_url: str | None = None,
    messaging_webhook_url: str | None = None,
    crm_origins: list[str] | None = None,
    tenant_id: str | None = None,
    webhook_format: str = "recmatch",
) -> Tenant:
    """Store a new tenant; its webhook secret is generated here."""
    if tenant_id is not None and not TENANT_ID.fullmatch(tenant_id):
        raise InvalidInput("tenant_id: 1-40 lowercase letters, digits or dashes")
    for origin in crm_origins or []:
        if not origin.startswith(("https://", "http://")) or origin.count("/") != 2:
            raise InvalidInput(f"crm_origins: {origin!r} is not an origin like https://crm.example.com")
    tenant = Tenant(
        tenant_id=tenant_id or f"t-{uuid.uuid4().hex[:12]}",
        name=name,
        crm_provider=crm_provider,
        integration_enabled=integration_enabled,
        crm_supports_matches=crm_supports_matches,
        webhook_url=webhook_url,
        messaging_webhook_url=messaging_webhook_url,
        crm_origins=crm_origins or [],
        webhook_format=webhook_format,
    )
    with map_es_errors("creating a tenant"):
        await es.index(index=names.accounts, id=f"tenant:{tenant.tenant_id}", document=_tenant_doc(tenant),
                       refresh=True)
    return tenant


async def update_tenant(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, **changes: Any) -> Tenant:
    """Change a tenant's flags or endpoints."""
    tenant = await get_tenant(es=es, names=names, tenant_id=tenant_id)
    tenant = tenant.model_copy(update=changes)
    with map_es_errors("updating a tenant"):
        await es.index(index=names.accounts, id=f"tenant:{tenant_id}", document=_tenant_doc(tenant),
                       refresh=True)
    return tenant


async def get_tenant(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str) -> Tenant:
    with map_es_errors("reading a tenant"):
        found = await ignoring(es, 404).get(index=names.accounts, id=f"tenant:{tenant_id}")
    if not found.get("found"):
        raise NotFound(f"no tenant {tenant_id!r}")
    return Tenant.model_validate(found["_source"])


async def create_seat(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, email: str, license: License
) -> tuple[Seat, str]:
    """Store a new seat and return it with its API key, which is shown once and stored only as a hash."""
    await get_tenant(es=es, names=names, tenant_id=tenant_id)
    seat = Seat(seat_id=f"s-{uuid.uuid4().hex[:12]}", tenant_id=tenant_id, email=email.lower(), license=license)
    # The key names its tenant, so one round trip reads the seat (by key hash) and the tenant together.
    api_key = f"{KEY_PREFIX}{tenant_id}_{secrets.token_urlsafe(32)}"
    key_hash = hash_key(api_key)
    with map_es_errors("creating a seat"):
        await es.index(index=names.accounts, id=f"seat:{key_hash}", refresh=True,
                       document={"kind": "seat", **seat.model_dump(), "key_hash": key_hash,
                                 "created_at": datetime.now(UTC).isoformat()})
    return seat, api_key


class KeyCache:
    """API keys this process checked a moment ago, by hash, so a burst of calls costs one read.

    Like Elasticsearch's own API-key cache: a revoked key or a changed tenant takes effect within `ttl` seconds
    (0 checks every call). Only keys that were accepted are kept.
    """

    def __init__(self, *, ttl: float, size: int = 10_000, timer: Callable[[], float] = time.monotonic) -> None:
        self._principals: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=size, ttl=ttl, timer=timer) if ttl > 0 else None)

    def get(self, key_hash: str) -> Principal | None:
        return self._principals.get(key_hash) if self._principals is not None else None

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._principals is not None:
            self._principals[key_hash] = principal


async def authenticate(
    *, es: AsyncElasticsearch, names: IndexNames, api_key: str | None, cache: KeyCache | None = None
) -> Principal:
    """The seat and tenant behind an API key, or NotAuthenticated."""
    if not api_key:
        raise NotAuthenticated("missing API key: send Authorization: Bearer <key>")
    tenant_id, _, secret = api_key.removeprefix(KEY_PREFIX).partition("_")
    if not api_key.startswith(KEY_PREFIX) or not secret or not TENANT_ID.fullmatch(tenant_id):
        raise NotAuthenticated(NOT_A_KEY)
    key_hash = hash_key(api_key)
    if cache is not None and (known := cache.get(key_hash)) is not None:
        return known
    with map_es_errors("checking the API key"):
        seat_doc, tenant_doc = (await es.mget(index=names.accounts,
                                              ids=[f"seat:{key_hash}", f"tenant:{tenant_id}"]))["docs"]
    if "error" in seat_doc or "error" in tenant_doc:  # e.g. shards still recovering after a restart
        raise SearchUnavailable("the accounts index is not available yet", retry_after=5)
    if not seat_doc.get("found") or seat_doc["_source"].get("disabled") or not tenant_doc.get("found"):
        raise NotAuthenticated(NOT_A_KEY)
    principal = Principal(tenant=Tenant.model_validate(tenant_doc["_source"]),
                          seat=Seat.model_validate(seat_doc["_source"]))
    if cache is not None:
        cache.put(key_hash, principal)
    return principal


def require_matches(principal: Principal) -> Principal:
    """Recommended Matches only for eligible licenses of tenants whose CRM integration supports it."""
    if principal.seat.license is License.hiring_collaborator:
        raise LicenseNotEligible(
            "Recommended Matches is not part of the Hiring Collaborator license; ask an admin for a recruiter seat"
        )
    if not principal.tenant.integration_enabled:
        raise FeatureNotEnabled("the CRM integration of this tenant is turned off; an admin can turn it on")
    if not principal.tenant.crm_supports_matches:
        raise FeatureNotEnabled(
            f"the CRM {principal.tenant.crm_provider!r} does not support Recommended Matches for this tenant"
        )
    return principal


def require_admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise NotPermitted("this call needs an admin seat")
    return principal
