"""Operators: the people who run a recmatch deployment, and alone may write the candidate pool all tenants share.

An operator is no tenant's seat. Operator keys are made only from the command line (`recmatch operators create`),
by whoever can reach the cluster; a tenant admin can never become one through the API."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from elasticsearch import AsyncElasticsearch

from recmatch.accounts.service import KeyCache, hash_key
from recmatch.core.errors import LimitReached, NotAuthenticated, NotPermitted, SearchUnavailable
from recmatch.core.es import IndexNames, ignoring, map_es_errors

OPERATOR_KEY_PREFIX = "rmop_"


@dataclass(frozen=True)
class Operator:
    operator_id: str
    email: str


async def create_operator(*, es: AsyncElasticsearch, names: IndexNames, email: str) -> tuple[Operator, str]:
    """Store an operator and return it with its key, shown once and stored only as a hash."""
    operator = Operator(operator_id=f"op-{uuid.uuid4().hex[:12]}", email=email.lower())
    api_key = f"{OPERATOR_KEY_PREFIX}{secrets.token_urlsafe(32)}"
    key_hash = hash_key(api_key)
    with map_es_errors("creating an operator"):
        await es.index(index=names.index("accounts"), id=f"operator:{key_hash}", refresh=True, document={
            "kind": "operator", "seat_id": operator.operator_id, "email": operator.email, "key_hash": key_hash,
            "created_at": datetime.now(UTC).isoformat()})
    return operator, api_key


async def authenticate_operator(
    *, es: AsyncElasticsearch, names: IndexNames, api_key: str | None, cache: KeyCache | None = None
) -> Operator:
    """The operator behind a key; a tenant's seat key (even an admin's) is refused with 403."""
    if not api_key:
        raise NotAuthenticated("missing operator key: send Authorization: Bearer <operator key>")
    if not api_key.startswith(OPERATOR_KEY_PREFIX):
        raise NotPermitted("the candidate pool is shared by every tenant: only an operator key may change it, "
                           "not a tenant's seat (admins included)")
    key_hash = hash_key(api_key)
    if cache is not None and cache.refused(key_hash):
        raise NotAuthenticated("unknown or revoked operator key")
    if cache is not None and not cache.may_look_up():
        raise LimitReached("too many unknown keys were tried at once; retry later", retry_after=1)
    with map_es_errors("checking the operator key"):
        found = await ignoring(es, 404).get(index=names.index("accounts"), id=f"operator:{key_hash}")
    if "error" in found:
        raise SearchUnavailable("the accounts index is not available yet", retry_after=5)
    if not found.get("found") or found["_source"].get("disabled"):
        if cache is not None:
            cache.refuse(key_hash)
        raise NotAuthenticated("unknown or revoked operator key")
    return Operator(operator_id=found["_source"]["seat_id"], email=found["_source"]["email"])
