"""Shared fixtures: a real Elasticsearch for integration tests, found as DESIGN.md says."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from elasticsearch import Elasticsearch

from recmatch.core.config import ES_VERSION, Settings
from recmatch.core.es import make_client

# Test webhooks go to receivers on loopback over http: allowed here as an operator would allow a network, and only
# here (tests of the refusals use settings without it). Secrets are sealed at rest as a deployment should.
os.environ.setdefault("RECMATCH_WEBHOOK_ALLOW_HTTP", "true")
os.environ.setdefault("RECMATCH_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.0/8"]')
os.environ.setdefault("RECMATCH_SECRETS_KEY", "bm90LWEtcmVhbC1zZWNyZXQtb25seS1mb3ItdGVzdHM=")


def _answers(url: str) -> bool:
    """The first node RECMATCH_ES_URL names (it may name several, comma-separated) answers."""
    try:
        return httpx.get(f"{url.split(',')[0].rstrip('/')}/_cluster/health", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


def _docker_engine_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # no SDK, no socket, no daemon: all mean "no Docker here"
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Elasticsearch is required when CI is set: {reason}", pytrace=False)
    pytest.skip(f"no Elasticsearch: {reason}")


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """RECMATCH_ES_URL if it answers; else a testcontainers node when Docker runs; else the local node."""
    url = os.environ.get("RECMATCH_ES_URL")
    if url and _answers(url):
        yield ",".join(host.strip().rstrip("/") for host in url.split(","))
        return
    if _docker_engine_answers():
        from testcontainers.elasticsearch import ElasticSearchContainer

        image = f"docker.elastic.co/elasticsearch/elasticsearch:{ES_VERSION}"
        with ElasticSearchContainer(image, mem_limit="2g") as node:
            yield node.get_url()
        return
    from recmatch.core.errors import RecmatchError
    from recmatch.ops.localnode import LocalNode

    try:
        status = LocalNode(Settings()).up(say=lambda line: print(line))
    except RecmatchError as exc:
        _unavailable(f"the local node did not start: {exc.detail}")
    yield status.url


@pytest.fixture(scope="session")
def settings(es_url: str) -> Settings:
    """Settings of this test session: its own index prefix, so sessions never collide."""
    return Settings(es_url=es_url, index_prefix=f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def es(settings: Settings) -> Iterator[Elasticsearch]:
    client = make_client(settings)
    yield client
    client.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*", expand_wildcards="all")
    client.close()
