"""The CRM sandbox (demo only, RECMATCH_SANDBOX_ENABLED): a page that plays the CRM around the framed widget."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from recmatch.accounts.service import License, Principal, Seat, get_tenant
from recmatch.api.deps import EsDep, NamesDep, SecretDep, SettingsDep, TaxonomyDep
from recmatch.api.routes.pipelines import PipelinePath
from recmatch.api.routes.widget import WIDGET_DIR, mint
from recmatch.core.errors import NotFound, RecmatchError
from recmatch.core.models import PipelineIn
from recmatch.pipelines import service as pipelines

router = APIRouter(tags=["widget"])


def _sandbox_enabled(request: Request) -> None:
    if not request.app.state.settings.sandbox_enabled:
        raise NotFound("the sandbox is off (RECMATCH_SANDBOX_ENABLED=true turns it on for demos)")


@router.get("/sandbox", response_class=HTMLResponse, include_in_schema=False)
async def sandbox_page(request: Request) -> HTMLResponse:
    """A page that plays the CRM: a pipeline form, the framed widget, and the messages it posts."""
    _sandbox_enabled(request)
    return HTMLResponse((WIDGET_DIR / "sandbox.html").read_text(encoding="utf-8"), headers={
        "Content-Security-Policy": "default-src 'self'; frame-src 'self'; script-src 'self'; style-src 'self'; "
                                   "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        "Cache-Control": "no-store"})


async def _sandbox_principal(request: Request, *, es: EsDep, names: NamesDep, settings: SettingsDep) -> Principal:
    """The sandbox plays a recruiter seat of the sandbox tenant (`make run` creates it)."""
    _sandbox_enabled(request)
    try:
        tenant = await get_tenant(es=es, names=names, tenant_id=settings.sandbox_tenant)
    except RecmatchError as exc:
        raise NotFound(f"the sandbox tenant {settings.sandbox_tenant!r} does not exist (run `make run`)") from exc
    seat = Seat(seat_id=f"sandbox-{tenant.tenant_id}", tenant_id=tenant.tenant_id, email="sandbox@example.com",
                license=License.recruiter)
    return Principal(tenant=tenant, seat=seat)


class SandboxOut(BaseModel):
    pipeline: pipelines.PipelineView
    widget_url: str
    expires_at: datetime


@router.post("/sandbox/api/pipelines/{crm_pipeline_id}", response_model=SandboxOut, include_in_schema=False)
async def sandbox_sync(crm_pipeline_id: PipelinePath, pipeline: PipelineIn, request: Request, es: EsDep,
                       names: NamesDep, secret: SecretDep, settings: SettingsDep,
                       taxonomy: TaxonomyDep) -> SandboxOut:
    """Sync a pipeline as the sandbox tenant's CRM would, and mint the widget token it would frame."""
    principal = await _sandbox_principal(request, es=es, names=names, settings=settings)
    stored, _ = await pipelines.put_pipeline(es=es, names=names, principal=principal,
                                             crm_pipeline_id=crm_pipeline_id, pipeline=pipeline, taxonomy=taxonomy)
    minted = mint(secret=secret, settings=settings, seat=principal.seat, crm_pipeline_id=crm_pipeline_id,
                  base=str(request.base_url).rstrip("/"))  # the sandbox frames the widget from its own origin
    return SandboxOut(pipeline=pipelines.PipelineView.of(stored), widget_url=minted.widget_url,
                      expires_at=minted.expires_at)


class SandboxTokenOut(BaseModel):
    token: str
    expires_at: datetime


@router.post("/sandbox/api/pipelines/{crm_pipeline_id}/token", response_model=SandboxTokenOut, include_in_schema=False)
async def sandbox_token(crm_pipeline_id: PipelinePath, request: Request, es: EsDep, names: NamesDep,
                        secret: SecretDep, settings: SettingsDep) -> SandboxTokenOut:
    """A fresh widget token for a pipeline the sandbox synced: what a CRM sends when the widget's token expires."""
    principal = await _sandbox_principal(request, es=es, names=names, settings=settings)
    await pipelines.get_pipeline(es=es, names=names, principal=principal,
                                 crm_pipeline_id=crm_pipeline_id)
    minted = mint(secret=secret, settings=settings, seat=principal.seat, crm_pipeline_id=crm_pipeline_id,
                  base=str(request.base_url).rstrip("/"))
    return SandboxTokenOut(token=minted.token, expires_at=minted.expires_at)
