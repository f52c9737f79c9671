"""What an operator sees of the API: Prometheus metrics, JSON log lines, and a request id that reaches Elasticsearch."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import elastic_transport
import elasticsearch
from elasticsearch import AsyncElasticsearch, Elasticsearch
from fastapi import APIRouter, FastAPI, Request
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
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, client_options

log = logging.getLogger("recmatch.ops.observability")
access_log = logging.getLogger("recmatch.access")

REQUEST_ID_HEADER = "X-Request-Id"
# Accepted from callers as is; anything else (too long, spaces, control characters) is replaced by a fresh id,
# so a caller cannot inject text into log lines or headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("recmatch_request_id", default=None)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"  # 404s: the raw path would make one series per URL anyone tries
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})  # scraped and probed all day: access lines at DEBUG

# -- metrics --------------------------------------------------------------------------------------------------
# prometheus_client keeps one value per process. Under several uvicorn workers, PROMETHEUS_MULTIPROC_DIR makes
# every worker write its values to files there, and /metrics sums them (prepare_metrics_dir sets it up).

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
                found = await es.options(request_timeout=OUTBOX_TIMEOUT_S, max_retries=0).search(
                    index=names.index("outbox"), size=0, track_total_hits=False,
                    aggs={"by_status": {"terms": {"field": "status", "size": 20}}})
            except (elasticsearch.ApiError, elastic_transport.TransportError) as exc:
                # The gauges keep their last values; recmatch_es_request_errors_total counts the failure.
                log.warning("outbox counts not refreshed: %s", exc)
                return
            counts = {bucket["key"]: bucket["doc_count"] for bucket in found["aggregations"]["by_status"]["buckets"]}
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


def current_request_id() -> str | None:
    """The id of the HTTP request being served (None outside one)."""
    return _request_id.get()


def _with_opaque_id(client_headers: Mapping[str, str], headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    request_id = _request_id.get()
    if request_id is None or "x-opaque-id" in client_headers:  # es.options(opaque_id=...) wins
        return headers
    if headers and any(name.lower() == "x-opaque-id" for name in headers):
        return headers
    return {**(headers or {}), "x-opaque-id": request_id}


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
            return super().perform_request(method, path, params=params, headers=_with_opaque_id(self._headers, headers),
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
                method, path, params=params, headers=_with_opaque_id(self._headers, headers), body=body,
                endpoint_id=endpoint_id, path_parts=path_parts)
        except Exception as exc:
            ES_ERRORS.labels(operation, _error_label(exc)).inc()
            raise
        finally:
            ES_DURATION.labels(operation).observe(time.perf_counter() - started)


def instrumented_client(settings: Settings) -> Elasticsearch:
    """recmatch.core.es.make_client, instrumented (es.options() copies keep the class)."""
    return InstrumentedElasticsearch(**client_options(settings))


def instrumented_async_client(settings: Settings) -> AsyncElasticsearch:
    """recmatch.core.es.make_async_client, instrumented (es.options() copies keep the class)."""
    return InstrumentedAsyncElasticsearch(**client_options(settings))


# -- requests: id, metrics, access log -------------------------------------------------------------------------


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None and isinstance(scope.get("endpoint"), StaticFiles):
        # A mounted static directory records no route: one series per mount, not one per file (nor "unmatched").
        mount = scope.get("root_path", "")[len(scope.get("app_root_path", "")):]
        return f"{mount}/{{path}}"
    return path or UNMATCHED_ROUTE


class RequestObservability:
    """ASGI middleware: request id in and out, request metrics by route template, one access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            failed = True
            raise
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope["method"], _route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route, str(status)).observe(elapsed)
            # The raw path and query are never logged: share links and widget URLs carry tokens.
            access_log.log(logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO,
                           "%s %s %d", method, route, status,
                           extra={"method": method, "route": route, "status": status,
                                  "duration_ms": round(elapsed * 1000, 2)})
            if not failed:
                # After an unhandled error the id stays set, so the app's 500 handler (outside this middleware)
                # still logs it; the request's task ends right after.
                _request_id.reset(token)


# -- logs -----------------------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class JsonLogFormatter(JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, and any extra fields."""

    def __init__(self) -> None:
        super().__init__("{asctime}{levelname}{name}{message}{request_id}", style="{",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        return log_data


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (and replaces when called again)."""


def configure_logging(*, level: str | int = logging.INFO, stream: TextIO | None = None) -> None:
    """JSON lines on stderr from every logger (recmatch, uvicorn, Elasticsearch client); safe to call again."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if isinstance(handler, _JsonHandler)]:
        root.removeHandler(handler)
    handler = _JsonHandler(stream or sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # through the root handler, as JSON
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")  # recmatch.access replaces it (route template, request id)
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    for chatty in ("elastic_transport", "httpx"):  # a line per call; metrics count them instead
        logging.getLogger(chatty).setLevel(logging.WARNING)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's log_config, so its own first lines (before the app is created) are JSON too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLogFormatter"}},
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"],
                              "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": False},
        },
    }


def install(app: FastAPI) -> None:
    """JSON logs, the request middleware and /metrics, on this app."""
    configure_logging()
    app.add_middleware(RequestObservability)
    app.include_router(router)
