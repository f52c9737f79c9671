"""What the tenant's integration offers (for an onboarding screen)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from recmatch.accounts.service import License
from recmatch.api.deps import PrincipalDep
from recmatch.api.errors import responses

router = APIRouter(prefix="/v1", tags=["integration"])


class IntegrationOut(BaseModel):
    tenant_id: str
    tenant_name: str
    crm_provider: str
    integration_enabled: bool
    crm_supports_matches: bool
    seat_email: str
    seat_license: License
    features: list[str] = Field(description="features on for this seat")
    unavailable: dict[str, str] = Field(description="features off, with the reason")
    crm_origins: list[str]


@router.get("/integration", response_model=IntegrationOut, responses=responses(401, 503))
async def get_integration(principal: PrincipalDep) -> IntegrationOut:
    """The tenant's CRM integration and which features this seat gets."""
    tenant, seat = principal.tenant, principal.seat
    unavailable = {}
    if not tenant.integration_enabled:
        unavailable["recommended_matches"] = "the CRM integration is turned off"
    elif not tenant.crm_supports_matches:
        unavailable["recommended_matches"] = f"{tenant.crm_provider} does not support Recommended Matches"
    elif seat.license is License.hiring_collaborator:
        unavailable["recommended_matches"] = "not part of the Hiring Collaborator license"
    features = [] if unavailable else ["recommended_matches"]
    if seat.license is License.admin:
        features.append("admin")
    return IntegrationOut(
        tenant_id=tenant.tenant_id, tenant_name=tenant.name, crm_provider=tenant.crm_provider,
        integration_enabled=tenant.integration_enabled, crm_supports_matches=tenant.crm_supports_matches,
        seat_email=seat.email, seat_license=seat.license, features=features, unavailable=unavailable,
        crm_origins=tenant.crm_origins,
    )
