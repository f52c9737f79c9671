"""Dependencies: settings, Elasticsearch clients, the caller, the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from elasticsearch import AsyncElasticsearch, Elasticsearch
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recmatch.accounts import Principal, authenticate, require_admin, require_matches
from recmatch.config import Settings
from recmatch.es import IndexNames
from recmatch.taxonomy import Taxonomy

bearer = HTTPBearer(auto_error=False, description="a seat's API key")


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_es(request: Request) -> AsyncElasticsearch:
    return request.app.state.es


def get_sync_es(request: Request) -> Elasticsearch:
    """The synchronous client, for the indexing code shared with `recmatch reindex` (runs in a worker thread)."""
    return request.app.state.sync_es


def get_names(request: Request) -> IndexNames:
    return IndexNames(request.app.state.settings.index_prefix)


def get_taxonomy_dep(request: Request) -> Taxonomy:
    return request.app.state.taxonomy


def get_today() -> date:
    """The day lists are computed for (UTC); tests override it to move time."""
    return datetime.now(UTC).date()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EsDep = Annotated[AsyncElasticsearch, Depends(get_es)]
SyncEsDep = Annotated[Elasticsearch, Depends(get_sync_es)]
NamesDep = Annotated[IndexNames, Depends(get_names)]
TaxonomyDep = Annotated[Taxonomy, Depends(get_taxonomy_dep)]
TodayDep = Annotated[date, Depends(get_today)]


async def get_principal(
    es: EsDep, names: NamesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    return await authenticate(es=es, names=names, api_key=credentials.credentials if credentials else None)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_matches_principal(principal: PrincipalDep) -> Principal:
    return require_matches(principal)


def get_admin_principal(principal: PrincipalDep) -> Principal:
    return require_admin(principal)


MatchesPrincipalDep = Annotated[Principal, Depends(get_matches_principal)]
AdminPrincipalDep = Annotated[Principal, Depends(get_admin_principal)]
