"""What an operator sees of each request: its id in and out, metrics by route template, one access log line."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recmatch.ops.logs import REQUEST_ID, REQUEST_ID_HEADER, configure_logging, request_id_var
from recmatch.ops.metrics import HTTP_DURATION, HTTP_REQUESTS, router

access_log = logging.getLogger("recmatch.access")

UNMATCHED_ROUTE = "unmatched"  # 404s: the raw path would make one series per URL anyone tries
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})  # scraped and probed all day: access lines at DEBUG


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
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
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
                request_id_var.reset(token)


def install(app: FastAPI) -> None:
    """JSON logs, the request middleware and /metrics, on this app."""
    configure_logging()
    app.add_middleware(RequestObservability)
    app.include_router(router)
