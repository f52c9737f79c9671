"""Fixtures for API tests: a candidate pool, the app, tenants and seats, all against the real node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from recmatch.api.app import create_app
from recmatch.core.config import Settings
from tests.integration.support import Seats, load_demo_pool, make_operator, make_tenant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-api"})


@pytest.fixture(scope="session")
def candidate_pool(api_settings: Settings, es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 demo candidates from the generator, loaded through a real reindex."""
    return load_demo_pool(api_settings, es, tmp_path_factory.mktemp("pool"))


@pytest.fixture(scope="session")
def app_client(api_settings: Settings, candidate_pool: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture(scope="session")
def seats(api_settings: Settings, app_client: TestClient) -> Seats:
    return make_tenant(api_settings)


@pytest.fixture(scope="session")
def other_tenant(api_settings: Settings, app_client: TestClient) -> Seats:
    return make_tenant(api_settings)


@pytest.fixture(scope="session")
def operator_key(api_settings: Settings, app_client: TestClient) -> str:
    return make_operator(api_settings)
