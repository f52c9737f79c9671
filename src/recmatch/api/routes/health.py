"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from recmatch.api.deps import EsDep

log = logging.getLogger("recmatch.api")
router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, es: EsDep) -> JSONResponse:
    """Elasticsearch answers with at least yellow health, and recmatch's indices are in place."""
    if not getattr(request.app.state, "cluster_prepared", False):
        return JSONResponse({"status": "unavailable", "detail": "preparing the Elasticsearch indices"},
                            status_code=503, headers={"Retry-After": "5"})
    try:
        health = await es.options(request_timeout=3, max_retries=0).cluster.health()
    except Exception as exc:  # any failure to reach the cluster means "not ready"
        log.warning("readiness: Elasticsearch did not answer: %s", exc)  # names hosts: logs only
        return JSONResponse({"status": "unavailable", "detail": f"Elasticsearch did not answer ({type(exc).__name__})"},
                            status_code=503, headers={"Retry-After": "5"})
    ready = health["status"] in ("green", "yellow")
    return JSONResponse({"status": "ready" if ready else "unavailable", "elasticsearch": health["status"]},
                        status_code=200 if ready else 503)
