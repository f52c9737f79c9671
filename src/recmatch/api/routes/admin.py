"""Admin calls: one candidate at a time in the live index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from recmatch.api.deps import AdminPrincipalDep, SettingsDep, SyncEsDep, TaxonomyDep
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
@router.put("/candidates/{candidate_id}", response_model=CandidateWritten, responses=responses(401, 403, 422, 503))
def put_candidate(
    candidate_id: CandidatePath, candidate: CandidateIn, _: AdminPrincipalDep, es: SyncEsDep, settings: SettingsDep,
    taxonomy: TaxonomyDep,
) -> CandidateWritten:
    """Upsert one candidate in the live index now (validated like a reindex line); a running reindex keeps it."""
    if candidate.candidate_id != candidate_id:
        raise InvalidInput(f"candidate_id: the body says {candidate.candidate_id!r} but the path says {candidate_id!r}")
    document = indexing.upsert_candidate(es=es, settings=settings, candidate=candidate, taxonomy=taxonomy)
    return CandidateWritten(candidate_id=candidate_id, occupation_codes=document["occupation_codes"],
                            title_norm=document["title_norm"], geocoded="geo" in document.get("location", {}))


@router.delete("/candidates/{candidate_id}", status_code=204, responses=responses(401, 403, 404, 503))
def delete_candidate(
    candidate_id: CandidatePath, principal: AdminPrincipalDep, es: SyncEsDep, settings: SettingsDep
) -> Response:
    """Erase a candidate from every list now, and from every later reindex."""
    indexing.erase_candidate(es=es, settings=settings, candidate_id=candidate_id, erased_by=principal.seat.seat_id)
    return Response(status_code=204)
