"""Prometheus metrics: HTTP requests, Elasticsearch calls (through an instrumented client), outbox and lists.

prometheus_client keeps one value per process. Under several uvicorn workers, PROMETHEUS_MULTIPROC_DIR makes every
worker write its values to files there, and /metrics sums them (prepare_metrics_dir sets it up).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import elastic_transport
import elasticsearch
from elasticsearch import AsyncElasticsearch, Elasticsearch
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from recmatch.core.es import IndexNames
from recmatch.ops.logs import with_opaque_id
from recmatch.webhooks import outbox

log = logging.getLogger("recmatch.observability")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "recmatch_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "recmatch_http_request_duration_seconds", "Time to answer an HTTP request, by route template and status",
    ["method", "route", "status"])
ES_DURATION = Histogram(
    "recmatch_es_request_duration_seconds",
    "Time of one Elasticsearch API call (the client's retries included), by API", ["operation"])
ES_ERRORS = Counter(
    "recmatch_es_request_errors",
    "Elasticsearch API calls that failed: an HTTP status, or the transport error (ConnectionError, ...)",
    ["operation", "error"])
OUTBOX_ENTRIES = Gauge(
    "recmatch_outbox_entries", "Outbox entries by status, counted in Elasticsearch when /metrics is read (cached)",
    ["status"], multiprocess_mode="mostrecent")
SNAPSHOT_LOOKUPS = Counter(
    "recmatch_snapshot_lookups", "List reads answered from the day's stored snapshot (hit) or by ranking (miss)",
    ["result"])

OUTBOX_STATUSES = ("pending", "delivering", "delivered", "dead")
OUTBOX_CACHE_S = 10.0
OUTBOX_TIMEOUT_S = 2.0

for _result in ("hit", "miss"):
    SNAPSHOT_LOOKUPS.labels(_result)  # both series exist from the start, at 0


def record_snapshot_lookup(*, cached: bool) -> None:
    """Count a list read served from a stored snapshot (cached) or computed now."""
    SNAPSHOT_LOOKUPS.labels("hit" if cached else "miss").inc()


def render_metrics() -> bytes:
    """The Prometheus text exposition of this process, or of all workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def prepare_metrics_dir(workers: int) -> Path | None:
    """Before starting uvicorn: empty PROMETHEUS_MULTIPROC_DIR, or make one when several workers will run."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # a previous run's values would be summed in
            stale.unlink()
        return directory
    if workers <= 1:
        return None
    directory = Path(tempfile.mkdtemp(prefix="recmatch-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)  # the workers inherit it
    return directory


class _OutboxCounts:
    """Outbox counts read at most every OUTBOX_CACHE_S, so frequent scrapes cost Elasticsearch one search."""

    def __init__(self) -> None:
        self.read_at = float("-inf")
        self.lock = asyncio.Lock()

    async def refresh(self, *, es: AsyncElasticsearch, names: IndexNames) -> None:
        if time.monotonic() - self.read_at < OUTBOX_CACHE_S:
            return
        async with self.lock:
            if time.monotonic() - self.read_at < OUTBOX_CACHE_S:
                return
            self.read_at = time.monotonic()  # a failure also waits for the next period: no hammering a sick cluster
            try:
                counts = await outbox.count_by_status(es=es, names=names, request_timeout=OUTBOX_TIMEOUT_S)
            except (elasticsearch.ApiError, elastic_transport.TransportError) as exc:
                # The gauges keep their last values; recmatch_es_request_errors_total counts the failure.
                log.warning("outbox counts not refreshed: %s", exc)
                return
            for status in {*OUTBOX_STATUSES, *counts}:
                OUTBOX_ENTRIES.labels(status).set(counts.get(status, 0))


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, Elasticsearch calls, outbox depth, snapshot cache."""
    state = request.app.state
    if getattr(state, "outbox_counts", None) is None:
        state.outbox_counts = _OutboxCounts()
    await state.outbox_counts.refresh(es=state.es, names=IndexNames(state.settings.index_prefix))
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)


# -- Elasticsearch calls: timed, counted, and tagged with the request id ---------------------------------------


def _error_label(exc: Exception) -> str:
    if isinstance(exc, elasticsearch.ApiError):
        return str(exc.meta.status)
    return type(exc).__name__


class InstrumentedElasticsearch(Elasticsearch):
    """The sync client, with every API call timed, its failures counted, and X-Opaque-Id set in a request."""

    def perform_request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                        headers: Mapping[str, str] | None = None, body: Any | None = None,
                        endpoint_id: str | None = None, path_parts: Mapping[str, Any] | None = None) -> Any:
        operation = endpoint_id or "unknown"
        started = time.perf_counter()
        try:
            return super().perform_request(method, path, params=params, headers=with_opaque_id(self._headers, headers),
                                           body=body, endpoint_id=endpoint_id, path_parts=path_parts)
        except Exception as exc:
            ES_ERRORS.labels(operation, _error_label(exc)).inc()
            raise
        finally:
            ES_DURATION.labels(operation).observe(time.perf_counter() - started)


class InstrumentedAsyncElasticsearch(AsyncElasticsearch):
    """The async client, with every API call timed, its failures counted, and X-Opaque-Id set in a request."""

    async def perform_request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                              headers: Mapping[str, str] | None = None, body: Any | None = None,
                              endpoint_id: str | None = None, path_parts: Mapping[str, Any] | None = None) -> Any:
        operation = endpoint_id or "unknown"
        started = time.perf_counter()
        try:
            return await super().perform_request(
                method, path, params=params, headers=with_opaque_id(self._headers, headers), body=body,
                endpoint_id=endpoint_id, path_parts=path_parts)
        except Exception as exc:
            ES_ERRORS.labels(operation, _error_label(exc)).inc()
            raise
        finally:
            ES_DURATION.labels(operation).observe(time.perf_counter() - started)
