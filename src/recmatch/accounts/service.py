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
from urllib.parse import urlsplit

from cachetools import TTLCache
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel, Field, SecretStr

from recmatch.accounts.sealing import seal, unseal
from recmatch.core import egress
from recmatch.core.config import Settings, get_settings
from recmatch.core.errors import (
    InvalidInput,
    LimitReached,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    SearchUnavailable,
)
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.core.ids import seat_doc_id, tenant_doc_id

KEY_PREFIX = "rm_"
NOT_A_KEY = "this API key is not valid: it is unknown or was revoked (keys start with rm_)"
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9\-]{0,39}")
# An origin exactly: scheme://host[:port], nothing else (no wildcard, path, query, user or space).
ORIGIN = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*"
                    r"|\[[0-9a-f:.]+\])(?::\d{1,5})?")


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
        "webhook_secret": seal(tenant.webhook_secret.get_secret_value()),
        "created_at": datetime.now(UTC).isoformat(),
    }


def _tenant_of(source: dict[str, Any]) -> Tenant:
    return Tenant.model_validate({**source, "webhook_secret": unseal(source["webhook_secret"])})


def check_origin(origin: str) -> str:
    """An origin a CRM frames the widget from: exactly scheme://host[:port], lowercase."""
    candidate = origin.lower() if isinstance(origin, str) else ""
    try:
        exact = ORIGIN.fullmatch(candidate) is not None and (urlsplit(candidate).port or 0) <= 65535
    except ValueError:
        exact = False
    if not exact:
        raise InvalidInput(f"crm_origins: {origin!r} is not an exact origin like https://crm.example.com or "
                           "https://crm.example.com:8443 (no wildcards, paths or spaces)")
    return candidate


def check_webhook_url(field: str, url: str | None, settings: Settings) -> str | None:
    """A webhook URL as a tenant may set it (https; no loopback, private or metadata address unless allowed)."""
    if url is None or url == "":
        return None
    try:
        egress.check_url(url, settings)
    except egress.RefusedDestination as exc:
        raise InvalidInput(f"{field}: {url!r} is refused: {exc}") from None
    return url


def _checked_endpoints(changes: dict[str, Any], settings: Settings) -> dict[str, Any]:
    checked = dict(changes)
    for field in ("webhook_url", "messaging_webhook_url"):
        if field in checked:
            checked[field] = check_webhook_url(field, checked[field], settings)
    if "crm_origins" in checked:
        checked["crm_origins"] = checked["crm_origins"] or []
        if len(checked["crm_origins"]) > 20:
            raise InvalidInput("crm_origins: at most 20 origins")
        checked["crm_origins"] = list(dict.fromkeys(check_origin(origin) for origin in checked["crm_origins"]))
    return checked


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
    settings: Settings | None = None,
) -> Tenant:
    """Store a new tenant; its webhook secret is generated here."""
    if tenant_id is not None and not TENANT_ID.fullmatch(tenant_id):
        raise InvalidInput("tenant_id: 1-40 lowercase letters, digits or dashes")
    endpoints = _checked_endpoints({"webhook_url": webhook_url, "messaging_webhook_url": messaging_webhook_url,
                                    "crm_origins": crm_origins or []}, settings or get_settings())
    webhook_url, messaging_webhook_url = endpoints["webhook_url"], endpoints["messaging_webhook_url"]
    crm_origins = endpoints["crm_origins"]
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
        await es.index(index=names.accounts, id=tenant_doc_id(tenant.tenant_id), document=_tenant_doc(tenant),
                       refresh=True)
    return tenant


UPDATABLE = frozenset({"name", "crm_provider", "integration_enabled", "crm_supports_matches", "webhook_url",
                       "messaging_webhook_url", "crm_origins", "webhook_format"})


async def update_tenant(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, settings: Settings | None = None, **changes: Any
) -> Tenant:
    """Change a tenant's flags or endpoints (URLs and origins are checked like at creation)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a tenant")
    changes = _checked_endpoints(changes, settings or get_settings())
    tenant = await get_tenant(es=es, names=names, tenant_id=tenant_id)
    tenant = tenant.model_copy(update=changes)
    with map_es_errors("updating a tenant"):
        await es.index(index=names.accounts, id=tenant_doc_id(tenant_id), document=_tenant_doc(tenant),
                       refresh=True)
    return tenant


async def get_tenant(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str) -> Tenant:
    with map_es_errors("reading a tenant"):
        found = await ignoring(es, 404).get(index=names.accounts, id=tenant_doc_id(tenant_id))
    if not found.get("found"):
        raise NotFound(f"no tenant {tenant_id!r}")
    return _tenant_of(found["_source"])


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
        await es.index(index=names.accounts, id=seat_doc_id(key_hash), refresh=True,
                       document={"kind": "seat", **seat.model_dump(), "key_hash": key_hash,
                                 "created_at": datetime.now(UTC).isoformat()})
    return seat, api_key


class KeyCache:
    """API keys this process checked a moment ago, by hash, so a burst of calls costs one read.

    Like Elasticsearch's own API-key cache: a revoked key or a changed tenant takes effect within `ttl` seconds
    (0 checks every call). Keys that were refused are remembered as long, and fresh lookups of unknown keys are
    limited to `failed_per_second` (a token bucket), so guessing keys cannot turn into Elasticsearch reads.
    """

    def __init__(self, *, ttl: float, size: int = 10_000, timer: Callable[[], float] = time.monotonic,
                 failed_per_second: float = 20.0) -> None:
        self._principals: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=size, ttl=ttl, timer=timer) if ttl > 0 else None)
        self._refused: TTLCache[str, bool] = TTLCache(maxsize=size, ttl=max(ttl, 5.0), timer=timer)
        self._timer = timer
        self._rate = failed_per_second
        self._tokens = failed_per_second
        self._filled_at = timer()

    def get(self, key_hash: str) -> Principal | None:
        return self._principals.get(key_hash) if self._principals is not None else None

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._principals is not None:
            self._principals[key_hash] = principal

    def refused(self, key_hash: str) -> bool:
        return key_hash in self._refused

    def refuse(self, key_hash: str) -> None:
        self._refused[key_hash] = True
        self._take()

    def may_look_up(self) -> bool:
        """False when this process looked up too many unknown keys lately."""
        now = self._timer()
        self._tokens = min(self._rate, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        return self._tokens >= 1

    def _take(self) -> None:
        self._tokens -= 1


UNKNOWN_KEY = NOT_A_KEY  # the one wording of a refused key


async def authenticate(
    *, es: AsyncElasticsearch, names: IndexNames, api_key: str | None, cache: KeyCache | None = None
) -> Principal:
    """The seat and tenant behind an API key, or NotAuthenticated."""
    if not api_key:
        raise NotAuthenticated("missing API key: send Authorization: Bearer <key>")
    tenant_id, _, secret = api_key.removeprefix(KEY_PREFIX).partition("_")
    if not api_key.startswith(KEY_PREFIX) or not secret or not TENANT_ID.fullmatch(tenant_id):
        raise NotAuthenticated(UNKNOWN_KEY)
    key_hash = hash_key(api_key)
    if cache is not None:
        if (known := cache.get(key_hash)) is not None:
            return known
        if cache.refused(key_hash):
            raise NotAuthenticated(UNKNOWN_KEY)
        if not cache.may_look_up():
            raise LimitReached("too many unknown API keys were tried at once; retry later",
                               retry_after=1)
    with map_es_errors("checking the API key"):
        seat_doc, tenant_doc = (await es.mget(index=names.accounts,
                                              ids=[seat_doc_id(key_hash), tenant_doc_id(tenant_id)]))["docs"]
    if "error" in seat_doc or "error" in tenant_doc:  # e.g. shards still recovering after a restart
        raise SearchUnavailable("the accounts index is not available yet", retry_after=5)
    if not seat_doc.get("found") or seat_doc["_source"].get("disabled") or not tenant_doc.get("found"):
        if cache is not None:
            cache.refuse(key_hash)
        raise NotAuthenticated(UNKNOWN_KEY)
    principal = Principal(tenant=_tenant_of(tenant_doc["_source"]), seat=Seat.model_validate(seat_doc["_source"]))
    if cache is not None:
        cache.put(key_hash, principal)
    return principal


async def seat_principal(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, seat_id: str, cache: KeyCache | None = None
) -> Principal:
    """The seat (as it is now) and tenant behind a widget token: a disabled or changed seat counts within the
    same short time as an API key's."""
    cache_key = f"seat-id:{tenant_id}:{seat_id}"
    if cache is not None and (known := cache.get(cache_key)) is not None:
        return known
    with map_es_errors("checking the widget token's seat"):
        found = await es.search(index=names.index("accounts"), size=2, query={"bool": {"filter": [
            {"term": {"kind": "seat"}}, {"term": {"seat_id": seat_id}}, {"term": {"tenant_id": tenant_id}}]}})
        tenant = await get_tenant(es=es, names=names, tenant_id=tenant_id)
    hits = found["hits"]["hits"]
    if not hits or hits[0]["_source"].get("disabled"):
        raise NotAuthenticated("the widget token's seat is disabled or no longer exists; reopen it from the CRM")
    principal = Principal(tenant=tenant, seat=Seat.model_validate(hits[0]["_source"]))
    if cache is not None:
        cache.put(cache_key, principal)
    return principal


async def change_seat(
    *, es: AsyncElasticsearch, names: IndexNames, seat_id: str, disabled: bool | None = None,
    license: License | None = None,
) -> Seat:
    """Disable or enable a seat, or change its license (every key of the seat follows)."""
    with map_es_errors("changing a seat"):
        found = await es.search(index=names.index("accounts"), size=10, seq_no_primary_term=True, query={
            "bool": {"filter": [{"term": {"kind": "seat"}}, {"term": {"seat_id": seat_id}}]}})
        hits = found["hits"]["hits"]
        if not hits:
            raise NotFound(f"no seat {seat_id!r}")
        changes: dict[str, Any] = {}
        if disabled is not None:
            changes["disabled"] = disabled
        if license is not None:
            changes["license"] = license.value
        for hit in hits:
            await es.update(index=names.index("accounts"), id=hit["_id"], doc=changes, refresh=True)
    return Seat.model_validate({**hits[0]["_source"], **changes})


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
