"""Pipelines synced by the CRM, and their Recommended Matches."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response
from pydantic import BaseModel, Field, ValidationError

from recmatch.api.deps import (
    EsDep,
    ListMemoryDep,
    MatchesPrincipalDep,
    NamesDep,
    TaxonomyDep,
    TodayDep,
    ViewerDep,
)
from recmatch.api.errors import Problem, responses
from recmatch.core.errors import InvalidInput, RecmatchError, SearchUnavailable
from recmatch.core.ids import SNAPSHOT_KEY_PATTERN
from recmatch.core.models import PipelineId, PipelineIn
from recmatch.matches import service as matches
from recmatch.ops.metrics import record_snapshot_lookup
from recmatch.pipelines import service as pipelines

router = APIRouter(prefix="/v1", tags=["pipelines"])
PipelinePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:\-]{1,128}$", description="the CRM's pipeline id")]
GATED = responses(401, 403, 404, 422, 503)


@router.put("/pipelines/{crm_pipeline_id}", response_model=pipelines.PipelineView, responses=GATED,
            summary="Sync a pipeline from the CRM")
async def put_pipeline(
    crm_pipeline_id: PipelinePath, pipeline: PipelineIn, response: Response, memory: ListMemoryDep,
    es: EsDep, names: NamesDep, principal: MatchesPrincipalDep, taxonomy: TaxonomyDep,
) -> pipelines.PipelineView:
    """Create or update a pipeline. The version grows when a field that drives ranking changes."""
    stored, created = await pipelines.put_pipeline(
        es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id, pipeline=pipeline, taxonomy=taxonomy,
        recent=memory.recent,
    )
    response.status_code = 201 if created else 200
    return pipelines.PipelineView.of(stored)


class BatchItem(PipelineIn):
    crm_pipeline_id: PipelineId


class BatchIn(BaseModel):
    # Items are checked one by one (see put_pipelines), so one bad item cannot refuse the others.
    pipelines: list[dict[str, Any]] = Field(
        min_length=1, max_length=100, description="1 to 100 pipelines, each a pipeline body with its crm_pipeline_id",
        json_schema_extra={"items": BatchItem.model_json_schema()},
    )


class BatchResult(BaseModel):
    index: int = Field(description="the item's position in the request, from 0")
    crm_pipeline_id: str | None
    status: Literal["created", "updated", "refused"]
    pipeline: pipelines.PipelineView | None = None
    error: Problem | None = Field(default=None, description="why the item was refused")


class BatchOut(BaseModel):
    stored: int = Field(description="items created or updated")
    refused: int = Field(description="items refused (each result says why)")
    results: list[BatchResult]


def _batch_item(index: int, raw: dict[str, Any]) -> BatchItem:
    try:
        return BatchItem.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("; ".join(
            f"pipelines.{index}.{'.'.join(str(part) for part in error['loc']) or 'item'}: {error['msg']}"
            for error in exc.errors())) from None


@router.post("/pipelines:batch", response_model=BatchOut, responses=GATED, summary="Sync up to 100 pipelines")
async def put_pipelines(
    batch: BatchIn, memory: ListMemoryDep, es: EsDep, names: NamesDep, principal: MatchesPrincipalDep,
    taxonomy: TaxonomyDep,
) -> BatchOut:
    """Each pipeline succeeds or fails on its own; the answer lists one result per pipeline, in order."""
    results = []
    for index, raw in enumerate(batch.pipelines):
        crm_pipeline_id = raw.get("crm_pipeline_id") if isinstance(raw.get("crm_pipeline_id"), str) else None
        try:
            item = _batch_item(index, raw)
            stored, created = await pipelines.put_pipeline(
                es=es, names=names, principal=principal, crm_pipeline_id=item.crm_pipeline_id,
                pipeline=PipelineIn.model_validate(item.model_dump(exclude={"crm_pipeline_id"})), taxonomy=taxonomy,
                recent=memory.recent,
            )
            results.append(BatchResult(index=index, crm_pipeline_id=item.crm_pipeline_id,
                                       status="created" if created else "updated",
                                       pipeline=pipelines.PipelineView.of(stored)))
        except RecmatchError as exc:
            if isinstance(exc, SearchUnavailable):
                raise  # nothing after it would be stored either: the caller retries the whole batch
            results.append(BatchResult(index=index, crm_pipeline_id=crm_pipeline_id, status="refused",
                                       error=Problem(type=exc.type, detail=exc.detail)))
    refused = sum(result.status == "refused" for result in results)
    return BatchOut(stored=len(results) - refused, refused=refused, results=results)


@router.get("/pipelines/{crm_pipeline_id}", response_model=pipelines.PipelineView, responses=GATED,
            summary="A pipeline as stored")
async def get_pipeline(
    crm_pipeline_id: PipelinePath, es: EsDep, names: NamesDep, principal: ViewerDep
) -> pipelines.PipelineView:
    stored = await pipelines.get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)
    return pipelines.PipelineView.of(stored)


@router.get("/pipelines/{crm_pipeline_id}/matches", response_model=matches.MatchesPage, responses=GATED,
            summary="Recommended Matches: up to 125 ranked candidates")
async def get_matches(
    crm_pipeline_id: PipelinePath, es: EsDep, names: NamesDep, principal: ViewerDep, today: TodayDep,
    background: BackgroundTasks, memory: ListMemoryDep,
    page: Annotated[int, Query(ge=1, le=125, description="1-based page")] = 1,
    page_size: Annotated[int, Query(ge=1, le=125, description="candidates a page")] = 25,
    snapshot: Annotated[str | None, Query(max_length=64, pattern=SNAPSHOT_KEY_PATTERN,
                                          description="page within this snapshot")] = None,
    explain: Annotated[bool, Query(description="add the exact search body (paste into Kibana Dev Tools)")] = False,
    refresh: Annotated[bool, Query(description="rank the day's list again if candidates were indexed or the CRM "
                                               "synced the candidates it holds since it was made")] = False,
) -> matches.MatchesPage:
    """Pages of one list that stays the same for the day unless the pipeline's ranking fields change."""
    listing = await matches.list_matches(
        es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id, today=today,
        page=page, page_size=page_size, snapshot=snapshot, explain=explain,
        defer=background.add_task, memory=memory, refresh=refresh,  # a new list is stored after the page is sent
    )
    record_snapshot_lookup(cached=not listing.computed)
    return listing
