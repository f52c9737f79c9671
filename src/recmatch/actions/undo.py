"""Undo a dismissal: the candidate's status, the pipeline's exclusions and what the ranking learned, as before it.

What was learned loses the candidate's dismiss example (the learner keeps one example per candidate, so a save
that the dismissal replaced is not restored). An "undismiss" event is appended for the record.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import elasticsearch
from elasticsearch import AsyncElasticsearch

from recmatch.accounts.service import Principal
from recmatch.actions.registry import ACTION_TYPES, Action
from recmatch.actions.service import ActionOut
from recmatch.core.errors import Conflict, NotFound
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.core.ids import action_state_id, event_id
from recmatch.pipelines.service import StoredPipeline, get_pipeline, update_pipeline
from recmatch.ranking import learning

UNDO = "undismiss"  # the event an undo appends; RESET the one a reset of what was learned appends
RESET = "reset"
# What else may have been done to the candidate (a dismissal undone leaves those as they were).
_DONE_AT = {spec.status: spec.done_at for spec in ACTION_TYPES.values() if spec.action is not Action.dismiss}
_DISMISS = ACTION_TYPES[Action.dismiss]


async def undo_dismissal(*, es: AsyncElasticsearch, names: IndexNames, principal: Principal, crm_pipeline_id: str,
                         candidate_id: str) -> ActionOut:
    """Take back the dismissal of a candidate for this pipeline (409 when the candidate is not dismissed)."""
    pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)
    tenant_id = principal.tenant.tenant_id
    state_id = action_state_id(tenant_id, crm_pipeline_id, candidate_id)
    with map_es_errors("reading the candidate's status"):
        state = await ignoring(es, 404).get(index=names.actions, id=state_id)
    if not state.get("found"):
        raise NotFound(f"{candidate_id} has no action recorded for this pipeline")
    previous = state["_source"]
    if not previous.get(_DISMISS.done_at):
        raise Conflict(f"{candidate_id} is not dismissed for this pipeline ({previous.get('status')})")
    remaining = {status: previous[at] for status, at in _DONE_AT.items() if previous.get(at)}
    now = datetime.now(UTC)
    concurrency = {"if_seq_no": state["_seq_no"], "if_primary_term": state["_primary_term"]}
    try:
        with map_es_errors("taking back the dismissal"):
            if remaining:
                document = {key: value for key, value in previous.items()
                            if key not in (_DISMISS.done_at, "dismiss_reason")}
                document.update(status=max(remaining, key=lambda status: remaining[status]),
                                updated_at=now.isoformat())
                await es.index(index=names.actions, id=state_id, document=document, **concurrency)
            else:
                await es.delete(index=names.actions, id=state_id, **concurrency)
    except elasticsearch.ConflictError:
        raise Conflict(f"another action on {candidate_id} was recorded at the same moment; retry") from None
    await record_marker(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id,
                        candidate_id=candidate_id, action=UNDO, at=now)

    def change(current: StoredPipeline) -> dict[str, Any]:
        acted = current.acted_candidate_ids
        if not remaining:
            acted = [cid for cid in acted if cid != candidate_id]
        state = learning.LearningState.from_dict(current.learned) if current.learned else learning.LearningState()
        kept = tuple(example for example in state.examples
                     if not (example.candidate_id == candidate_id and example.signal == "dismiss"))
        return {"learned": replace(state, examples=kept).to_dict() if kept or state.removed else None,
                "learning_version": current.learning_version + 1, "acted_candidate_ids": acted}

    updated = await update_pipeline(es=es, names=names, pipeline=pipeline, change=change)
    status = max(remaining, key=lambda s: remaining[s]) if remaining else "none"
    return ActionOut(action=Action.dismiss, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id, status=status,
                     at=now, repeated=False, learning_version=updated.learning_version)


async def record_marker(*, es: AsyncElasticsearch, names: IndexNames, principal: Principal, crm_pipeline_id: str,
                        candidate_id: str | None, action: str, at: datetime) -> None:
    """Append an undo or a reset to the events index, so a replay of the pipeline's signals knows of it."""
    event = {"tenant_id": principal.tenant.tenant_id, "seat_id": principal.seat.seat_id,
             "crm_pipeline_id": crm_pipeline_id, "candidate_id": candidate_id, "action": action, "at": at.isoformat()}
    event["event_id"] = event_id(event)
    with map_es_errors("recording the event"):
        await ignoring(es, 409).index(index=names.events, id=event["event_id"], document=event,
                                      op_type="create", refresh="wait_for")
