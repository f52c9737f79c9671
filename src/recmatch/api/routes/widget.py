"""The framed widget: its token, and its page (with the tenant's frame-ancestors)."""

from __future__ import annotations

import html
import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from recmatch.accounts.service import Seat, check_origin, get_tenant
from recmatch.accounts.tokens import mint_widget_token, read_widget_token
from recmatch.actions.registry import widget_table
from recmatch.api.deps import EsDep, MatchesPrincipalDep, NamesDep, SecretDep, SettingsDep
from recmatch.api.errors import responses
from recmatch.api.routes.pipelines import PipelinePath
from recmatch.core.config import Settings
from recmatch.core.errors import InvalidInput, NotAuthenticated, NotFound
from recmatch.pipelines import service as pipelines

WIDGET_DIR = Path(__file__).resolve().parents[2] / "widget"
STATIC_DIR = WIDGET_DIR / "static"

router = APIRouter(tags=["widget"])


class WidgetTokenOut(BaseModel):
    token: str
    expires_at: datetime
    widget_url: str


def public_base(request: Request, settings: Settings) -> str:
    """Where callers reach this API: RECMATCH_PUBLIC_BASE_URL when it is set, else the address this request used."""
    if "public_base_url" in settings.model_fields_set:
        return settings.public_base_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def mint(*, secret: str, settings: Settings, seat: Seat, crm_pipeline_id: str, base: str) -> WidgetTokenOut:
    """A widget token and the absolute URL that frames the widget with it (BASE: where the API is reached)."""
    token, expires_at = mint_widget_token(secret=secret, seat=seat, crm_pipeline_id=crm_pipeline_id,
                                          ttl=timedelta(seconds=settings.widget_token_ttl_s))
    return WidgetTokenOut(token=token, expires_at=expires_at,
                          widget_url=f"{base}/widget/{quote(crm_pipeline_id, safe='')}?token={token}")


@router.post("/v1/pipelines/{crm_pipeline_id}/widget-token", response_model=WidgetTokenOut,
             responses=responses(401, 403, 404, 503), summary="A short-lived token for the framed widget")
async def widget_token(crm_pipeline_id: PipelinePath, request: Request, es: EsDep, names: NamesDep,
                       secret: SecretDep, settings: SettingsDep, principal: MatchesPrincipalDep) -> WidgetTokenOut:
    """Scoped to this pipeline and this seat, valid at most 15 minutes; the CRM frames `widget_url` (absolute) with
    it, and renews it before `expires_at` by posting a fresh token to the frame (docs/widget.md)."""
    await pipelines.get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)
    return mint(secret=secret, settings=settings, seat=principal.seat, crm_pipeline_id=crm_pipeline_id,
                base=public_base(request, settings))


def frame_ancestors(origins: list[str]) -> str:
    """The CSP of a page the CRM frames: only the tenant's CRM origins may frame it (exact origins only: a value
    stored before origins were checked, such as `*`, is left out)."""
    exact = []
    for origin in origins:
        try:
            exact.append(check_origin(origin))
        except InvalidInput:
            continue
    ancestors = " ".join(exact) or "'none'"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}")


@router.get("/widget/{crm_pipeline_id}", response_class=HTMLResponse, include_in_schema=False)
async def widget_page(crm_pipeline_id: PipelinePath, es: EsDep, names: NamesDep, secret: SecretDep,
                      token: str = "") -> HTMLResponse:
    """The widget page; a missing, invalid or expired token renders its own "reopen from your CRM" state."""
    state, origins, expires_at = "invalid", [], ""
    try:
        claims = read_widget_token(secret=secret, token=token, allow_expired=True)
        if claims.crm_pipeline_id == crm_pipeline_id:
            origins = (await get_tenant(es=es, names=names, tenant_id=claims.seat.tenant_id)).crm_origins
            state, expires_at = ("expired" if claims.expired else "valid"), claims.expires_at.isoformat()
    except (NotAuthenticated, NotFound):
        pass
    values = {"token": token if state == "valid" else "", "pipeline_id": crm_pipeline_id, "token_state": state,
              "parent_origins": " ".join(origins), "expires_at": expires_at, "csp_nonce": secrets.token_urlsafe(16),
              "actions": json.dumps(widget_table(), separators=(",", ":"))}
    page = (WIDGET_DIR / "index.html").read_text(encoding="utf-8")
    for name, value in values.items():
        page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
    return HTMLResponse(page, status_code=200 if state == "valid" else 401, headers={
        "Content-Security-Policy": frame_ancestors(origins), "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})
