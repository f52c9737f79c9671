"""What the recruiter does with a recommended candidate, and what the ranking learned from it."""

# No `from __future__ import annotations`: the action routes are built at import time from the registry, and
# FastAPI reads their parameter types from the signatures as objects.

import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path
from pydantic import BaseModel, Field

from recmatch.actions import service as actions
from recmatch.actions import undo
from recmatch.actions.idempotency import idempotent, request_hash
from recmatch.actions.registry import ACTION_TYPES, ActionType, DismissIn, InMailIn
from recmatch.actions.service import ActionOut
from recmatch.api.deps import EsDep, NamesDep, SecretDep, SettingsDep, TaxonomyDep, ViewerDep
from recmatch.api.errors import responses
from recmatch.api.routes.pipelines import PipelinePath
from recmatch.core.errors import InvalidInput
from recmatch.pipelines.service import StoredPipeline, get_pipeline, update_pipeline
from recmatch.ranking import learning
from recmatch.text.taxonomy import Taxonomy

router = APIRouter(prefix="/v1/pipelines/{crm_pipeline_id}", tags=["actions"])
CandidatePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@\-]{1,128}$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                              description="the same key and body get the same answer")]
ACTION_ERRORS = responses(401, 403, 404, 409, 422, 429, 503)


def _act(spec: ActionType) -> Callable[..., Awaitable[dict]]:
    """The route of one action type: parse, run it once per Idempotency-Key, answer."""

    async def act(crm_pipeline_id: PipelinePath, candidate_id: CandidatePath, es: EsDep, names: NamesDep,
                  settings: SettingsDep, secret: SecretDep, principal: ViewerDep, body: BaseModel | None = None,
                  idempotency_key: IdempotencyKey = None) -> dict:
        fingerprint = request_hash(spec.action.value, crm_pipeline_id, candidate_id,
                                   body.model_dump(mode="json") if body else None)
        return await idempotent(
            es=es, names=names, principal=principal, key=idempotency_key, fingerprint=fingerprint,
            # A stored answer is replayed only to a caller who may act on this pipeline now (scope, visibility).
            check=lambda: get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id),
            run=lambda: actions.perform(
                es=es, names=names, settings=settings, secret=secret, principal=principal,
                crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id, action=spec.action,
                inmail=body if isinstance(body, InMailIn) else None,
                dismissal=body if isinstance(body, DismissIn) else None,
            ),
        )

    # The request body, when the action takes one, is required and typed as its declaration says.
    parameters = list(inspect.signature(act).parameters.values())
    if spec.body is None:
        parameters = [parameter for parameter in parameters if parameter.name != "body"]
    else:
        parameters = [parameter.replace(annotation=Annotated[spec.body, Body()], default=inspect.Parameter.empty)
                      if parameter.name == "body" else parameter for parameter in parameters]
        parameters.sort(key=lambda parameter: parameter.default is not inspect.Parameter.empty)
    act.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    act.__doc__ = spec.summary
    return act


for _spec in ACTION_TYPES.values():
    router.add_api_route(f"/candidates/{{candidate_id}}/{_spec.action.value}", _act(_spec), methods=["POST"],
                         name=_spec.action.value, response_model=ActionOut, responses=ACTION_ERRORS)


@router.delete("/candidates/{candidate_id}/dismiss", response_model=ActionOut, responses=ACTION_ERRORS)
async def undo_dismiss(crm_pipeline_id: PipelinePath, candidate_id: CandidatePath, es: EsDep, names: NamesDep,
                       principal: ViewerDep) -> ActionOut:
    """Undo a dismissal: the candidate may come back in the next lists, and the ranking unlearns it."""
    return await undo.undo_dismissal(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id,
                                     candidate_id=candidate_id)


class LearnedEntry(BaseModel):
    kind: str = Field(description="the kind of feature: skills, occupation_codes, title_words, companies, "
                                  "seniority, years, distance, open_to_work, open_to_remote")
    key: str = Field(description="the feature; DELETE …/learned/{kind}/{key} removes this item")
    label: str
    direction: str = Field(description="more: ranked higher; less: ranked lower")
    signals: int = Field(description="examples on the item's side that have the feature")
    weight: float = Field(description="the factor it applies to the score of candidates that have it")
    text: str
    evidence: dict[str, int] = Field(description="positives_with of positives, negatives_with of negatives")


class LearnedOut(BaseModel):
    crm_pipeline_id: str
    learning_version: int
    items: list[LearnedEntry]
    removed: list[str] = Field(default_factory=list, description="items the recruiter removed, as kind:key")
    examples: int = Field(default=0, description="signals kept to learn from (a reset forgets them)")


def _learned_view(pipeline: StoredPipeline, taxonomy: Taxonomy) -> LearnedOut:
    state = learning.LearningState.from_dict(pipeline.learned)
    understanding = pipeline.understanding
    spelled = {skill.name: skill.display for skill in understanding.skills}
    items = learning.describe(state, understanding=understanding,
                              label_of=lambda kind, key: _label(taxonomy, spelled, kind, key))
    return LearnedOut(crm_pipeline_id=pipeline.crm_pipeline_id, learning_version=pipeline.learning_version,
                      items=[LearnedEntry(**{name: getattr(item, name) for name in LearnedEntry.model_fields})
                             for item in items],
                      removed=sorted(state.removed), examples=len(state.examples))


def _label(taxonomy: Taxonomy, spelled: dict[str, str], kind: str, key: str) -> str:
    """The name a recruiter knows (an occupation's title, a skill as the pipeline spells it); describe() adds more."""
    if kind == "occupation_codes":
        try:
            return taxonomy.occupation(key).title
        except KeyError:
            return key
    if kind != "skills":
        return key
    # Skills are stored normalised; short ones are mostly acronyms (SQL, AWS, CSS), longer ones names.
    return spelled.get(key) or " ".join(word.upper() if len(word) <= 3 else word.capitalize() for word in key.split())


@router.get("/learned", response_model=LearnedOut, responses=responses(401, 403, 404, 503))
async def get_learned(crm_pipeline_id: PipelinePath, es: EsDep, names: NamesDep, principal: ViewerDep,
                      taxonomy: TaxonomyDep) -> LearnedOut:
    """What the ranking learned from this pipeline's actions, in the recruiter's words (only what has evidence)."""
    pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)
    return _learned_view(pipeline, taxonomy)


@router.delete("/learned", response_model=LearnedOut, responses=responses(401, 403, 404, 503))
async def reset_learned(crm_pipeline_id: PipelinePath, es: EsDep, names: NamesDep, principal: ViewerDep,
                        taxonomy: TaxonomyDep) -> LearnedOut:
    """Forget what was learned; the next list ranks without it (acted-on candidates stay out)."""
    pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)
    await undo.record_marker(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id,
                             candidate_id=None, action=undo.RESET, at=datetime.now(UTC))
    reset = await update_pipeline(es=es, names=names, pipeline=pipeline, change=lambda current: {
        "learned": None, "learning_version": current.learning_version + 1})
    return _learned_view(reset, taxonomy)


LearnedKind = Annotated[str, Path(description="the item's kind, as GET …/learned names it")]
LearnedKey = Annotated[str, Path(min_length=1, max_length=300, description="the item's key, as GET …/learned names it")]


@router.delete("/learned/{kind}/{key:path}", response_model=LearnedOut, responses=responses(401, 403, 404, 422, 503))
async def remove_learned_item(crm_pipeline_id: PipelinePath, kind: LearnedKind, key: LearnedKey, es: EsDep,
                              names: NamesDep, principal: ViewerDep, taxonomy: TaxonomyDep) -> LearnedOut:
    """Remove one learned item: the ranking stops using it, and does not learn it again until a reset."""
    if kind not in learning.FEATURE_KINDS:
        raise InvalidInput(f"kind: must be one of {', '.join(learning.FEATURE_KINDS)}, not {kind!r}")
    pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)

    def change(current: StoredPipeline) -> dict[str, object]:
        state = learning.remove_item(learning.LearningState.from_dict(current.learned), kind=kind, key=key)
        return {"learned": state.to_dict(), "learning_version": current.learning_version + 1}

    removed = await update_pipeline(es=es, names=names, pipeline=pipeline, change=change)
    return _learned_view(removed, taxonomy)
