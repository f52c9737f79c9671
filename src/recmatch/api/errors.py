"""One error shape for every failure: {"type": "<ErrorName>", "detail": "<human sentence>"}."""

from __future__ import annotations

import json
import logging
from typing import Any

import elastic_transport
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from recmatch.core.errors import RecmatchError
from recmatch.ops.logs import current_request_id

log = logging.getLogger("recmatch.api")


class Problem(BaseModel):
    """Every error's body."""

    type: str = Field(examples=["LicenseNotEligible"])
    detail: str = Field(examples=["Recommended Matches is not part of the Hiring Collaborator license"])


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error statuses a route may answer."""
    return {status: {"model": Problem} for status in statuses}


def problem(status: int, type_: str, detail: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"type": type_, "detail": detail}, status_code=status, headers=headers)


def validation_detail(exc: RequestValidationError) -> str:
    """Each failing field by its path, with pydantic's sentence (which names the limit)."""
    parts = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        parts.append(f"{'.'.join(location) or 'body'}: {error.get('msg')}")
    return "; ".join(parts)


def json_error_detail(body: bytes) -> str | None:
    """Where a request body stops being JSON, by line and column (what an editor shows), or None if it parses."""
    try:
        json.loads(body.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        return f"body is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg.lower()}"
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RecmatchError)
    async def _domain(_: Request, exc: RecmatchError) -> JSONResponse:
        return problem(exc.status_code, exc.type, exc.detail, exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            detail = json_error_detail(await request.body())
            if detail is not None:
                return problem(422, "InvalidJSON", detail)
        return problem(422, "InvalidInput", validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        return problem(exc.status_code, names.get(exc.status_code, "HTTPError"), str(exc.detail))

    @app.exception_handler(elastic_transport.TransportError)
    async def _unmapped_transport(_: Request, exc: elastic_transport.TransportError) -> JSONResponse:
        # A safety net: services map client errors themselves, but never show a stack trace for one.
        log.warning("unmapped Elasticsearch transport error: %s", exc.message)  # names hosts: logs only
        return problem(503, "SearchUnavailable", "Elasticsearch is unavailable", retry_after=5)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = problem(500, "InternalError", "recmatch failed to answer this request; it has been logged")
        request_id = current_request_id()
        if request_id:  # the middleware cannot add it to a response built after the exception left it
            response.headers["X-Request-Id"] = request_id
        return response
