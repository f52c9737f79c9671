"""Dependencies: settings, Elasticsearch clients, the caller, the clock.

All are ``async def``, even those that do not await: FastAPI runs a plain ``def`` dependency in its thread pool,
a hop that costs more than these functions do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from elasticsearch import AsyncElasticsearch, Elasticsearch
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recmatch.accounts.operators import Operator, authenticate_operator
from recmatch.accounts.service import (
    KEY_PREFIX,
    License,
    Principal,
    Seat,
    authenticate,
    get_tenant,
    require_admin,
    require_matches,
    seat_principal,
)
from recmatch.accounts.tokens import read_widget_token, server_secret
from recmatch.core.config import Settings
from recmatch.core.errors import NotAuthenticated, NotFound, NotPermitted
from recmatch.core.es import IndexNames
from recmatch.matches.memory import ListMemory
from recmatch.text.taxonomy import Taxonomy

bearer = HTTPBearer(auto_error=False, description="a seat's API key")


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_es(request: Request) -> AsyncElasticsearch:
    return request.app.state.es


async def get_sync_es(request: Request) -> Elasticsearch:
    """The synchronous client, for the indexing code shared with `recmatch reindex` (runs in a worker thread)."""
    return request.app.state.sync_es


async def get_names(request: Request) -> IndexNames:
    return IndexNames(request.app.state.settings.index_prefix)


async def get_taxonomy_dep(request: Request) -> Taxonomy:
    return request.app.state.taxonomy


async def get_secret(request: Request) -> str:
    """The signing secret for widget and share tokens (read once per process)."""
    state = request.app.state
    if getattr(state, "secret", None) is None:
        state.secret = await server_secret(es=state.es, names=IndexNames(state.settings.index_prefix),
                                           settings=state.settings)
    return state.secret


async def get_list_memory(request: Request) -> ListMemory:
    return request.app.state.list_memory


async def get_today() -> date:
    """The day lists are computed for (UTC); tests override it to move time."""
    return datetime.now(UTC).date()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EsDep = Annotated[AsyncElasticsearch, Depends(get_es)]
SyncEsDep = Annotated[Elasticsearch, Depends(get_sync_es)]
NamesDep = Annotated[IndexNames, Depends(get_names)]
TaxonomyDep = Annotated[Taxonomy, Depends(get_taxonomy_dep)]
TodayDep = Annotated[date, Depends(get_today)]
ListMemoryDep = Annotated[ListMemory, Depends(get_list_memory)]
SecretDep = Annotated[str, Depends(get_secret)]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_principal(request: Request, es: EsDep, names: NamesDep, credentials: BearerDep) -> Principal:
    """A seat, by its API key (widget tokens are refused here)."""
    if credentials is not None and _looks_like_widget_token(credentials.credentials):
        raise NotPermitted("this call needs a seat API key; a widget token cannot make it")
    return await authenticate(es=es, names=names, api_key=credentials.credentials if credentials else None,
                              cache=request.app.state.key_cache)


def _looks_like_widget_token(credential: str) -> bool:
    """Widget tokens are JWTs (three dot-separated parts); anything else was meant as an API key."""
    return credential.count(".") == 2 and not credential.startswith(KEY_PREFIX)


async def get_viewer(request: Request, es: EsDep, names: NamesDep, credentials: BearerDep) -> Principal:
    """A seat by its API key, or the framed widget by its token (then scoped to one pipeline)."""
    if credentials is None or not _looks_like_widget_token(credentials.credentials):
        return await authenticate(es=es, names=names, api_key=credentials.credentials if credentials else None,
                                  cache=request.app.state.key_cache)
    claims = read_widget_token(secret=await get_secret(request), token=credentials.credentials)
    settings = request.app.state.settings
    try:
        if settings.sandbox_enabled and claims.seat.seat_id == f"sandbox-{settings.sandbox_tenant}":
            # The sandbox plays its tenant's CRM with a seat that exists only in its tokens (demo only).
            tenant = await get_tenant(es=es, names=names, tenant_id=settings.sandbox_tenant)
            seat = Seat(seat_id=claims.seat.seat_id, tenant_id=tenant.tenant_id, email=claims.seat.email,
                        license=License.recruiter)
            return Principal(tenant=tenant, seat=seat, pipeline_scope=claims.crm_pipeline_id)
        # The seat as it is now (through the same short cache as keys): disabling or downgrading it counts.
        current = await seat_principal(es=es, names=names, tenant_id=claims.seat.tenant_id,
                                       seat_id=claims.seat.seat_id, cache=request.app.state.key_cache)
    except NotFound:
        raise NotAuthenticated("the widget token's tenant no longer exists") from None
    return Principal(tenant=current.tenant, seat=current.seat, pipeline_scope=claims.crm_pipeline_id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_matches_principal(principal: PrincipalDep) -> Principal:
    return require_matches(principal)


async def get_matches_viewer(principal: Annotated[Principal, Depends(get_viewer)]) -> Principal:
    return require_matches(principal)


ViewerDep = Annotated[Principal, Depends(get_matches_viewer)]


async def get_admin_principal(principal: PrincipalDep) -> Principal:
    return require_admin(principal)


async def get_operator(request: Request, es: EsDep, names: NamesDep, credentials: BearerDep) -> Operator:
    """An operator, by an operator key (tenant seats, admins included, get 403)."""
    return await authenticate_operator(es=es, names=names, api_key=credentials.credentials if credentials else None,
                                       cache=request.app.state.key_cache)


OperatorDep = Annotated[Operator, Depends(get_operator)]
MatchesPrincipalDep = Annotated[Principal, Depends(get_matches_principal)]
AdminPrincipalDep = Annotated[Principal, Depends(get_admin_principal)]
