"""JSON log lines, each with the id of the request it belongs to (the id also reaches Elasticsearch as X-Opaque-Id).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# Accepted from callers as is; anything else (too long, spaces, control characters) is replaced by a fresh id,
# so a caller cannot inject text into log lines or headers.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
request_id_var: ContextVar[str | None] = ContextVar("recmatch_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request being served (None outside one)."""
    return request_id_var.get()


def with_opaque_id(client_headers: Mapping[str, str], headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    request_id = request_id_var.get()
    if request_id is None or "x-opaque-id" in client_headers:  # es.options(opaque_id=...) wins
        return headers
    if headers and any(name.lower() == "x-opaque-id" for name in headers):
        return headers
    return {**(headers or {}), "x-opaque-id": request_id}


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
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
