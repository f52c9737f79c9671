"""Already in your CRM: the CRM tells recmatch which candidates it holds, so they are not recommended again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, ValidationError

from recmatch.accounts import holdings
from recmatch.api.deps import EsDep, MatchesPrincipalDep, NamesDep
from recmatch.api.errors import Problem, responses

router = APIRouter(prefix="/v1", tags=["crm candidates"])
GATED = responses(401, 403, 422, 503)


class HeldOut(BaseModel):
    held: int = Field(description="keys (member ids and profile URLs) now recorded for this tenant")


@router.post("/crm-candidates", response_model=HeldOut, responses=GATED, summary="A candidate your CRM already holds")
async def hold_one(candidate: holdings.HeldCandidate, es: EsDep, names: NamesDep,
                   principal: MatchesPrincipalDep) -> HeldOut:
    """Left out of this tenant's lists from the next list on ("Refresh list" ranks again at once)."""
    written = await holdings.hold(es=es, names=names, tenant_id=principal.tenant.tenant_id, candidates=[candidate])
    return HeldOut(held=written)


class HeldBatchIn(BaseModel):
    # Checked one by one, so one bad item cannot refuse the others.
    candidates: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000, description="1 to 1,000 candidates, each a member_id and/or a profile_url",
        json_schema_extra={"items": holdings.HeldCandidate.model_json_schema()})
    remove: bool = Field(default=False, description="forget these instead (they may be recommended again)")


class HeldResult(BaseModel):
    index: int
    status: str = Field(description="held, removed, or refused")
    error: Problem | None = None


class HeldBatchOut(BaseModel):
    accepted: int
    refused: int
    results: list[HeldResult]


@router.post("/crm-candidates:batch", response_model=HeldBatchOut, responses=GATED,
             summary="Sync up to 1,000 candidates your CRM holds (or forgets)")
async def hold_many(batch: HeldBatchIn, es: EsDep, names: NamesDep, principal: MatchesPrincipalDep) -> HeldBatchOut:
    """Each item is accepted or refused on its own; the answer has one result per item, in order."""
    accepted: list[holdings.HeldCandidate] = []
    results: list[HeldResult] = []
    for index, raw in enumerate(batch.candidates):
        try:
            accepted.append(holdings.HeldCandidate.model_validate(raw))
            results.append(HeldResult(index=index, status="removed" if batch.remove else "held"))
        except ValidationError as exc:
            detail = "; ".join(f"candidates.{index}.{'.'.join(str(part) for part in error['loc']) or 'item'}: "
                               f"{error['msg']}" for error in exc.errors())
            results.append(HeldResult(index=index, status="refused", error=Problem(type="InvalidInput", detail=detail)))
    change = holdings.release if batch.remove else holdings.hold
    await change(es=es, names=names, tenant_id=principal.tenant.tenant_id, candidates=accepted)
    return HeldBatchOut(accepted=len(accepted), refused=len(results) - len(accepted), results=results)
