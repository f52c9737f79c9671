"""Operator calls on the shared candidate pool (one candidate at a time), and a tenant admin's own integration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from recmatch.accounts import service as accounts
from recmatch.api.deps import AdminPrincipalDep, EsDep, NamesDep, OperatorDep, SettingsDep, SyncEsDep, TaxonomyDep
from recmatch.api.errors import responses
from recmatch.core.errors import InvalidInput
from recmatch.core.models import CandidateIn
from recmatch.indexing import reindex as indexing

router = APIRouter(prefix="/v1/admin", tags=["admin"])
CandidatePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@\-]{1,128}$")]


class CandidateWritten(BaseModel):
    candidate_id: str
    occupation_codes: list[str]
    title_norm: str
    geocoded: bool


# Plain `def`: FastAPI runs these in its thread pool, with the same synchronous indexing code as `recmatch reindex`.
@router.put("/candidates/{candidate_id}", response_model=CandidateWritten,
            responses=responses(401, 403, 409, 422, 503))
def put_candidate(
    candidate_id: CandidatePath, candidate: CandidateIn, operator: OperatorDep, es: SyncEsDep, settings: SettingsDep,
    taxonomy: TaxonomyDep,
    lift_erasure: Annotated[bool, Query(description="re-add an erased candidate on purpose (logged)")] = False,
) -> CandidateWritten:
    """Operators only: upsert one candidate in the live index now (validated like a reindex line); a running
    reindex keeps it. An erased candidate answers 409 unless `lift_erasure=true`."""
    if candidate.candidate_id != candidate_id:
        raise InvalidInput(f"candidate_id: the body says {candidate.candidate_id!r} but the path says {candidate_id!r}")
    document = indexing.upsert_candidate(es=es, settings=settings, candidate=candidate, taxonomy=taxonomy,
                                         lift_erasure_by=operator.operator_id if lift_erasure else None)
    return CandidateWritten(candidate_id=candidate_id, occupation_codes=document["occupation_codes"],
                            title_norm=document["title_norm"], geocoded="geo" in document.get("location", {}))


@router.delete("/candidates/{candidate_id}", status_code=204, responses=responses(401, 403, 404, 503))
def delete_candidate(
    candidate_id: CandidatePath, operator: OperatorDep, es: SyncEsDep, settings: SettingsDep
) -> Response:
    """Operators only: erase a candidate from every list now, and from every later reindex."""
    indexing.erase_candidate(es=es, settings=settings, candidate_id=candidate_id, erased_by=operator.operator_id)
    return Response(status_code=204)


class IntegrationIn(BaseModel):
    """What a tenant admin may change of their own integration; a field left out stays as it is."""

    webhook_url: str | None = Field(default=None, max_length=2048, description="https URL for CRM events; '' clears")
    messaging_webhook_url: str | None = Field(default=None, max_length=2048,
                                              description="https URL for InMails; '' clears")
    crm_origins: list[str] | None = Field(default=None, max_length=20,
                                          description="exact origins allowed to frame the widget: scheme://host[:port]")


class IntegrationEndpoints(BaseModel):
    tenant_id: str
    webhook_url: str | None
    messaging_webhook_url: str | None
    crm_origins: list[str]


@router.patch("/integration", response_model=IntegrationEndpoints, responses=responses(401, 403, 422, 503),
              summary="Change the tenant's webhook URLs and CRM origins")
async def update_integration(
    changes: IntegrationIn, principal: AdminPrincipalDep, es: EsDep, names: NamesDep, settings: SettingsDep
) -> IntegrationEndpoints:
    """Tenant admins: set where webhooks go (checked: https, no internal addresses) and who may frame the widget."""
    tenant = await accounts.update_tenant(es=es, names=names, tenant_id=principal.tenant.tenant_id, settings=settings,
                                          **changes.model_dump(exclude_unset=True))
    return IntegrationEndpoints(tenant_id=tenant.tenant_id, webhook_url=tenant.webhook_url,
                                messaging_webhook_url=tenant.messaging_webhook_url, crm_origins=tenant.crm_origins)
