"""Metrics, JSON logs and request ids, on the real app against the real Elasticsearch node."""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from recmatch.api.app import create_app
from recmatch.core.config import Settings
from recmatch.core.es import make_client
from recmatch.ops import logs, metrics
from recmatch.ops.metrics import InstrumentedElasticsearch
from tests.integration.support import Seats, make_operator, make_tenant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def obs_settings(settings: Settings) -> Settings:
    # No delivery worker: the outbox test writes entries it must find as written.
    return settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-obs", "delivery_in_api": False})


@pytest.fixture(scope="module")
def client(obs_settings: Settings, es: Elasticsearch) -> Iterator[TestClient]:
    with TestClient(create_app(obs_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def seats(obs_settings: Settings, client: TestClient) -> Seats:
    return make_tenant(obs_settings)


def metric(client: TestClient, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when the series does not exist yet)."""
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture()
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON log lines written while the test runs, parsed (each line must be one JSON object)."""
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, logs._JsonHandler)]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    handler.setStream(previous)


# -- request id ------------------------------------------------------------------------------------------------


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-Id": "crm-7f3a:42"}).headers["X-Request-Id"] == "crm-7f3a:42"
    generated = client.get("/healthz").headers["X-Request-Id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    for hostile in ("two words", "x" * 129, "line\tbreak"):
        replaced = client.get("/healthz", headers={"X-Request-Id": hostile}).headers["X-Request-Id"]
        assert replaced != hostile and len(replaced) == 32
    assert client.get("/no/such/route").headers["X-Request-Id"]  # errors carry it too


def _spy_on(transport: Any, seen: list[tuple[str, str | None, str | None]]) -> Callable[[], None]:
    """Record (target, X-Opaque-Id sent, X-Opaque-Id Elasticsearch echoed back) for each call through a transport."""
    original = transport.perform_request

    def record(target: str, headers: Any, meta: Any) -> None:
        seen.append((target, (headers or {}).get("x-opaque-id"), meta.headers.get("x-opaque-id")))

    if inspect.iscoroutinefunction(original):  # the async client's transport
        async def spy(method: str, target: str, **kwargs: Any) -> Any:
            response = await original(method, target, **kwargs)
            record(target, kwargs.get("headers"), response.meta)
            return response
    else:
        def spy(method: str, target: str, **kwargs: Any) -> Any:
            response = original(method, target, **kwargs)
            record(target, kwargs.get("headers"), response.meta)
            return response

    transport.perform_request = spy
    return lambda: setattr(transport, "perform_request", original)


def test_request_id_reaches_elasticsearch_as_x_opaque_id(client, seats, obs_settings):
    """Elasticsearch echoes the X-Opaque-Id it received in its response headers: that echo is the proof."""
    state = client.app.state
    seen: list[tuple[str, str | None, str | None]] = []
    restore = [_spy_on(state.es.transport, seen), _spy_on(state.sync_es.transport, seen)]
    try:
        async_id, sync_id = f"async-{uuid.uuid4().hex[:8]}", f"sync-{uuid.uuid4().hex[:8]}"
        answer = client.get("/v1/integration", headers={**seats.auth(seats.recruiter), "X-Request-Id": async_id})
        assert answer.status_code == 200, answer.text
        # A plain `def` route: the sync client, in FastAPI's thread pool.
        candidate = {"candidate_id": "c-obs-1", "name": "Ada Park", "title": "Software Engineer"}
        answer = client.put("/v1/admin/candidates/c-obs-1", json=candidate,
                            headers={**seats.auth(make_operator(obs_settings)), "X-Request-Id": sync_id})
        assert answer.status_code == 200, answer.text
        state.sync_es.cluster.health()  # outside any request
    finally:
        for undo in restore:
            undo()
    by_id: dict[str | None, list[tuple[str, str | None, str | None]]] = {}
    for call in seen:
        by_id.setdefault(call[1], []).append(call)
    for request_id in (async_id, sync_id):
        calls = by_id.get(request_id)
        assert calls, f"no Elasticsearch call carried {request_id}: {seen}"
        assert all(echoed == request_id for _, _, echoed in calls), calls
    assert any(target.startswith("/_doc") or "/_doc/" in target or "_update" in target
               for target, _, _ in by_id[sync_id]), by_id[sync_id]
    assert by_id[None] and all(echoed is None for _, _, echoed in by_id[None])  # no id outside a request


# -- metrics ---------------------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_status(client):
    labels = {"method": "GET", "route": "/v1/pipelines/{crm_pipeline_id}", "status": "401"}
    before = metric(client, "recmatch_http_requests_total", **labels)
    for pipeline_id in ("p-1", "p-2", "p-3"):
        assert client.get(f"/v1/pipelines/{pipeline_id}").status_code == 401
    client.get("/nowhere/abc")
    text = client.get("/metrics").text
    assert metric(client, "recmatch_http_requests_total", **labels) == before + 3
    assert metric(client, "recmatch_http_request_duration_seconds_count", **labels) == before + 3
    assert 'le="0.005"' in text and "recmatch_http_request_duration_seconds_bucket" in text
    assert metric(client, "recmatch_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    for raw in ("p-1", "p-2", "/nowhere/abc"):  # one series per route, never per URL
        assert raw not in text


def test_metrics_time_elasticsearch_calls_and_count_their_errors(client, obs_settings):
    assert client.get("/readyz").status_code == 200
    assert metric(client, "recmatch_es_request_duration_seconds_count", operation="cluster.health") >= 1
    es = make_client(obs_settings, client_class=InstrumentedElasticsearch)
    missing = metric(client, "recmatch_es_request_errors_total", operation="get", error="404")
    with pytest.raises(Exception):  # noqa: B017 - NotFoundError; only the count matters here
        es.get(index=f"{obs_settings.index_prefix}-no-such-index", id="x")
    es.close()
    assert metric(client, "recmatch_es_request_errors_total", operation="get", error="404") == missing + 1

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = make_client(client_class=InstrumentedElasticsearch, settings=obs_settings.model_copy(
        update={"es_url": f"http://127.0.0.1:{closed_port}", "es_max_retries": 0}))
    refused = metric(client, "recmatch_es_request_errors_total", operation="cluster.health", error="ConnectionError")
    with pytest.raises(Exception):  # noqa: B017 - elastic_transport.ConnectionError
        down.cluster.health()
    down.close()
    assert metric(client, "recmatch_es_request_errors_total", operation="cluster.health",
                  error="ConnectionError") == refused + 1


def test_metrics_show_outbox_depth_by_status(client, obs_settings, es, monkeypatch):
    monkeypatch.setattr(metrics, "OUTBOX_CACHE_S", 0.0)
    outbox = f"{obs_settings.index_prefix}-outbox"
    now = datetime.now(UTC).isoformat()
    for number, status in enumerate(["pending", "pending", "dead", "delivered"]):
        es.index(index=outbox, id=f"obs-{number}", document={
            "delivery_id": f"obs-{number}", "tenant_id": "t-obs", "target": "crm", "event": "prospect.saved",
            "status": status, "attempts": 8 if status == "dead" else 0, "created_at": now, "next_attempt_at": now})
    es.indices.refresh(index=outbox)
    assert metric(client, "recmatch_outbox_entries", status="pending") == 2
    assert metric(client, "recmatch_outbox_entries", status="dead") == 1
    assert metric(client, "recmatch_outbox_entries", status="delivered") == 1
    assert metric(client, "recmatch_outbox_entries", status="delivering") == 0

    # Within the cache period a scrape does not ask Elasticsearch again.
    monkeypatch.setattr(metrics, "OUTBOX_CACHE_S", 60.0)
    client.get("/metrics")
    es.index(index=outbox, id="obs-9", document={
        "delivery_id": "obs-9", "tenant_id": "t-obs", "target": "crm", "event": "prospect.saved", "status": "dead",
        "attempts": 8, "created_at": now, "next_attempt_at": now}, refresh=True)
    assert metric(client, "recmatch_outbox_entries", status="dead") == 1


def test_metrics_count_snapshot_cache_hits_and_misses(client):
    hits = metric(client, "recmatch_snapshot_lookups_total", result="hit")
    misses = metric(client, "recmatch_snapshot_lookups_total", result="miss")
    metrics.record_snapshot_lookup(cached=True)
    metrics.record_snapshot_lookup(cached=True)
    metrics.record_snapshot_lookup(cached=False)
    assert metric(client, "recmatch_snapshot_lookups_total", result="hit") == hits + 2
    assert metric(client, "recmatch_snapshot_lookups_total", result="miss") == misses + 1


# -- logs ------------------------------------------------------------------------------------------------------


def test_logs_are_json_lines_with_the_request_fields(client, log_lines):
    client.get("/v1/pipelines/p-9", headers={"X-Request-Id": "log-test-1"})
    client.get("/share/secret-share-token-123")
    lines = log_lines()
    assert lines, "nothing was logged"
    (access,) = [line for line in lines
                 if line.get("request_id") == "log-test-1" and line["logger"] == "recmatch.access"]
    assert access["level"] == "INFO"
    assert access["method"] == "GET" and access["route"] == "/v1/pipelines/{crm_pipeline_id}"
    assert access["status"] == 401 and isinstance(access["duration_ms"], float)
    assert access["message"] == "GET /v1/pipelines/{crm_pipeline_id} 401"
    assert datetime.fromisoformat(access["time"]).tzinfo is not None
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys()
    shared = [line for line in lines if line.get("route") == "/share/{token}"]
    assert shared and "secret-share-token-123" not in json.dumps(lines)  # tokens in paths are never logged


def test_log_lines_inside_a_request_carry_its_id(client, log_lines):
    logger = logging.getLogger("recmatch.test")

    @client.app.get("/_obs_test_logs")  # a route that logs, added for this test only
    async def logs_something() -> dict[str, str]:
        logger.warning("something happened")
        return {"ok": "yes"}

    try:
        client.get("/_obs_test_logs", headers={"X-Request-Id": "log-test-2"})
    finally:
        client.app.router.routes.pop()
    (line,) = [line for line in log_lines() if line["logger"] == "recmatch.test"]
    assert line["request_id"] == "log-test-2" and line["message"] == "something happened"
    assert line["level"] == "WARNING"


# -- several worker processes ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthz_count(pid_file: Path) -> float:
    """/healthz requests counted by one worker, read from its multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    total = 0.0
    for key, value, *_ in MmapedDict.read_all_values_from_file(str(pid_file)):
        name, _sample, labels, *_ = json.loads(key)
        if name == "recmatch_http_requests" and labels.get("route") == "/healthz":
            total += value
    return total


def test_two_workers_report_one_sum_and_log_json(obs_settings, tmp_path):
    """uvicorn --workers 2 with PROMETHEUS_MULTIPROC_DIR: /metrics from either worker counts both workers' requests."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps(logs.uvicorn_log_config()))
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "RECMATCH_ES_URL": obs_settings.es_url,
           "RECMATCH_INDEX_PREFIX": obs_settings.index_prefix, "RECMATCH_DELIVERY_IN_API": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "recmatch.api.app:create_app", "--factory", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--log-config", str(log_config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(server.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while sum("Application startup complete" in line for line in stderr) < 2:
            assert server.poll() is None, "".join(stderr)
            assert time.monotonic() < deadline, "".join(stderr)
            time.sleep(0.2)

        def scrape() -> float:
            text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "recmatch_http_requests_total" and sample.labels["route"] == "/healthz":
                        return sample.value
            return 0.0

        before = scrape()
        for _ in range(60):  # a new connection each time, so both workers answer some
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=10).status_code == 200
        counts = {scrape() for _ in range(6)}  # whichever worker answers, the same sum
        assert counts == {before + 60}
        served = [pid_file for pid_file in metrics_dir.glob("counter_*.db") if _healthz_count(pid_file) > 0]
        assert len(served) == 2  # one file per worker: both answered some of the requests
    finally:
        server.terminate()
        server.wait(timeout=30)
        reader.join(timeout=5)
    assert stderr
    for line in stderr:
        record = json.loads(line)  # every line, the parent process's too
        assert {"time", "level", "logger", "message"} <= record.keys()
