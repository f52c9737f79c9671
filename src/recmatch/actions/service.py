"""Save, InMail, export, dismiss: each recorded once, limited, learned from, and told to the CRM.

The owner of the actions and events indices. What differs between action types is declared in
``actions.registry``; this module does what they have in common.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import elasticsearch
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel, Field

from recmatch.accounts.service import License, Principal, Seat, Tenant
from recmatch.accounts.tokens import ShareClaims, mint_share_token
from recmatch.actions.quotas import count_usage
from recmatch.actions.registry import Action, DismissIn, InMailIn, action_type
from recmatch.core.config import Settings
from recmatch.core.errors import Conflict, NotFound, SearchUnavailable
from recmatch.core.es import IndexNames, delete_matching, ignoring, map_es_errors
from recmatch.core.ids import action_applied_marker, action_delivery_id, action_state_id, contact_delivery_id, event_id
from recmatch.pipelines.service import StoredPipeline, get_pipeline, read_pipeline, update_pipeline
from recmatch.ranking import learning
from recmatch.snapshots.store import listed_candidate_ids
from recmatch.webhooks import outbox


class NotExportable(Conflict):
    """The candidate has not allowed their profile to be exported."""


class MessagingNotConfigured(Conflict):
    """The tenant has no messaging webhook, so an InMail could not be delivered: it is not recorded as sent."""


class ActionOut(BaseModel):
    action: Action
    crm_pipeline_id: str
    candidate_id: str
    status: str = Field(description="the candidate's status for this pipeline after the action")
    at: datetime
    repeated: bool = Field(description="the action had already been done: nothing was sent again")
    delivery_id: str | None = Field(default=None, description="the webhook delivery this action queued")
    share_url: str | None = Field(default=None, description="InMail: the candidate's contact-share link")
    learning_version: int


def stub_profile(candidate_id: str, source: dict[str, Any]) -> dict[str, Any]:
    """What a CRM receives of a candidate: member id, name, current title, employer, headline, location, URL."""
    return {
        "member_id": candidate_id,
        "name": source.get("name"),
        "current_title": source.get("title"),
        "employer": source.get("company"),
        "headline": source.get("headline"),
        "location": (source.get("location") or {}).get("name"),
        "profile_url": source.get("profile_url"),
    }


async def perform(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    settings: Settings,
    secret: str,
    principal: Principal,
    crm_pipeline_id: str,
    candidate_id: str,
    action: Action,
    inmail: InMailIn | None = None,
    dismissal: DismissIn | None = None,
) -> ActionOut:
    """Do ACTION to a candidate of a pipeline, once; a repeat answers what was done, and sends nothing."""
    pipeline = await get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_pipeline_id)
    tenant_id = principal.tenant.tenant_id
    with map_es_errors("reading the candidate"):
        found = await ignoring(es, 404).get(index=names.candidates, id=candidate_id)
    if not found.get("found"):
        raise NotFound(f"no candidate {candidate_id!r} (erased, or not in the pool)")
    candidate = found["_source"]
    spec = action_type(action)
    state_id = action_state_id(tenant_id, crm_pipeline_id, candidate_id)
    with map_es_errors("reading the candidate's status"):
        state = await ignoring(es, 404).get(index=names.actions, id=state_id)
    previous = state["_source"] if state.get("found") else {}
    if previous.get(spec.done_at):
        step = (previous.get("pending") or {}).get(action.value)
        if step is not None:
            # Recorded, but a step after it failed: this retry finishes it (every step is idempotent).
            done = await complete_pending(es=es, names=names, settings=settings, secret=secret, tenant=principal.tenant,
                                          state_id=state_id, pending=step, candidate=candidate)
            return ActionOut(action=action, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                             status=previous["status"], at=previous[spec.done_at], repeated=True,
                             delivery_id=done.delivery_id, share_url=done.share_url,
                             learning_version=done.learning_version)
        if spec.refuse_repeat is not None:
            raise Conflict(spec.refuse_repeat.format(candidate_id=candidate_id, day=previous[spec.done_at][:10]))
        return ActionOut(action=action, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                         status=previous["status"], at=previous[spec.done_at], repeated=True,
                         learning_version=pipeline.learning_version)
    if spec.webhook is not None and spec.webhook.target == "messaging" and not principal.tenant.messaging_webhook_url:
        # Queued, it would only go dead: refuse, so nothing is recorded or shown as sent.
        raise MessagingNotConfigured("InMail is not connected for this account: it has no "
                                     "messaging webhook (messaging_webhook_url), so nothing was sent; an admin can "
                                     "set one")
    if spec.needs_export_consent and not candidate.get("allow_export"):
        raise NotExportable(f"{candidate['name']} has not allowed their profile to be exported to a CRM")
    now = datetime.now(UTC)
    if spec.quota is not None:
        await count_usage(es=es, names=names, principal=principal, kind=action.value, counted=spec.quota.counted,
                          limit=getattr(settings, spec.quota.setting), today=now.date())

    document = {**previous, "tenant_id": tenant_id, "crm_pipeline_id": crm_pipeline_id, "candidate_id": candidate_id,
                "status": spec.status, "seat_id": principal.seat.seat_id, spec.done_at: now.isoformat(),
                "updated_at": now.isoformat()}
    if dismissal is not None:
        document["dismiss_reason"] = dismissal.reason
    # The steps that follow are recorded with the action, in one write: until they are all applied, a retry or the
    # sweeper finds them here and applies them again (each one is idempotent).
    pending = {"action": action.value, "at": now.isoformat(), "seat_id": principal.seat.seat_id,
               "seat_email": principal.seat.email, "crm_pipeline_id": crm_pipeline_id, "candidate_id": candidate_id,
               "reason": dismissal.reason if dismissal else None,
               "inmail": inmail.model_dump(mode="json") if inmail is not None else None}
    document["pending"] = {**(previous.get("pending") or {}), action.value: pending}
    document["pending_since"] = previous.get("pending_since") or now.isoformat()
    concurrency = ({"if_seq_no": state["_seq_no"], "if_primary_term": state["_primary_term"]}
                   if state.get("found") else {"op_type": "create"})
    try:
        with map_es_errors("recording the action"):
            await es.index(index=names.actions, id=state_id, document=document, **concurrency)
    except elasticsearch.ConflictError:
        raise Conflict(f"another action on {candidate_id} was recorded at the same moment; retry") from None

    done = await complete_pending(es=es, names=names, settings=settings, secret=secret, tenant=principal.tenant,
                                  state_id=state_id, pending=pending, candidate=candidate, pipeline=pipeline)
    return ActionOut(action=action, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                     status=spec.status, at=now, repeated=False, delivery_id=done.delivery_id,
                     share_url=done.share_url, learning_version=done.learning_version)


PAGE = 25  # the widget's page: what a recruiter reads before acting


async def _passed_over(*, es: AsyncElasticsearch, names: IndexNames, pipeline: StoredPipeline,
                       candidate_id: str) -> list[learning.Example]:
    """The candidates shown above this one on its page of the pipeline's current list and not acted on: the
    recruiter read them and passed them over (weak negatives for learning)."""
    ranked = await listed_candidate_ids(es=es, names=names, pipeline=pipeline)
    if candidate_id not in ranked:
        return []
    rank = ranked.index(candidate_id)
    acted = set(pipeline.acted_candidate_ids)
    above = [cid for cid in ranked[rank - rank % PAGE:rank] if cid not in acted]
    if not above:
        return []
    with map_es_errors("reading the candidates passed over"):
        found = await es.mget(index=names.candidates, ids=above)
    return [learning.example_of({**doc["_source"], "candidate_id": doc["_id"]}, signal="passed")
            for doc in found["docs"] if doc.get("found")]


@dataclass(frozen=True)
class Completed:
    delivery_id: str | None
    share_url: str | None
    learning_version: int


async def complete_pending(
    *, es: AsyncElasticsearch, names: IndexNames, settings: Settings, secret: str, tenant: Tenant, state_id: str,
    pending: dict[str, Any], candidate: dict[str, Any] | None = None, pipeline: StoredPipeline | None = None,
) -> Completed:
    """Apply every step that follows a recorded action (event, learning and exclusion, outbox), then clear it.

    Each step is idempotent (an event id per action, a marker of the actions a pipeline learned from, a
    deterministic delivery id), so applying a step twice changes nothing: a retry, the sweeper, or both may run it."""
    action = Action(pending["action"])
    spec = action_type(action)
    crm_pipeline_id, candidate_id = pending["crm_pipeline_id"], pending["candidate_id"]
    seat = Seat(seat_id=pending["seat_id"], tenant_id=tenant.tenant_id, email=pending["seat_email"],
                license=License.recruiter)
    principal = Principal(tenant=tenant, seat=seat)
    at = datetime.fromisoformat(pending["at"])
    if pipeline is None:
        pipeline = await read_pipeline(es=es, names=names, tenant_id=tenant.tenant_id, crm_pipeline_id=crm_pipeline_id)
    if candidate is None:
        with map_es_errors("reading the candidate"):
            found = await ignoring(es, 404).get(index=names.candidates, id=candidate_id)
        candidate = found["_source"] if found.get("found") else None
    reason = pending.get("reason")
    inmail = InMailIn.model_validate(pending["inmail"]) if pending.get("inmail") else None
    marker = action_applied_marker(action.value, candidate_id, pending["at"])
    learned_version = pipeline.learning_version if pipeline is not None else 0
    delivery_id = share_url = None
    if pipeline is not None:
        # Erased meanwhile: nothing to learn from, record or tell of them; the exclusion still applies.
        example = passed = None
        if candidate is not None:
            example = learning.example_of({**candidate, "candidate_id": candidate_id}, signal=spec.learning_signal,
                                          reason=reason)
            passed = await _passed_over(es=es, names=names, pipeline=pipeline, candidate_id=candidate_id)
        steps: list[Awaitable[Any]] = [update_pipeline(
            es=es, names=names, pipeline=pipeline, change=lambda current: _learn(
                current, example=example, passed=passed or [], candidate_id=candidate_id, marker=marker))]
        if candidate is not None:
            steps.append(_record_event(es=es, names=names, principal=principal, pipeline=pipeline,
                                       candidate_id=candidate_id, action=action.value, reason=reason,
                                       candidate=candidate, at=at))
            steps.append(_tell(es=es, names=names, settings=settings, secret=secret, principal=principal,
                               pipeline=pipeline, candidate_id=candidate_id, candidate=candidate, action=action,
                               inmail=inmail))
        # All run, even when one fails (each is tried again as a whole later); the first failure is raised.
        results = await asyncio.gather(*steps, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
        learned_version = results[0].learning_version
        if candidate is not None:
            delivery_id, share_url = results[2]
    await _clear_pending(es=es, names=names, state_id=state_id, action=action)
    return Completed(delivery_id=delivery_id, share_url=share_url, learning_version=learned_version)


async def _clear_pending(*, es: AsyncElasticsearch, names: IndexNames, state_id: str, action: Action) -> None:
    """Forget ACTION's pending steps: they are applied."""
    for _ in range(5):
        with map_es_errors("completing the action"):
            found = await ignoring(es, 404).get(index=names.actions, id=state_id)
        if not found.get("found"):
            return
        pending = dict(found["_source"].get("pending") or {})
        if pending.get(action.value) is None:
            return
        pending.pop(action.value)
        document = {**found["_source"], "pending": pending or None,
                    "pending_since": found["_source"].get("pending_since") if pending else None}
        try:
            with map_es_errors("completing the action"):
                await es.index(index=names.actions, id=state_id, document=document, if_seq_no=found["_seq_no"],
                               if_primary_term=found["_primary_term"])
            return
        except elasticsearch.ConflictError:
            continue  # another action on this candidate was recorded meanwhile: clear ours from the newer document
    # Left pending: harmless, the sweeper applies the (idempotent) steps again and clears it.


APPLIED_KEPT = 500  # a pipeline remembers the last 500 actions it learned from: far more than are ever pending


def _learn(current: StoredPipeline, *, example: learning.Example | None, passed: list[learning.Example],
           candidate_id: str, marker: str) -> dict[str, Any]:
    if marker in current.applied_actions:
        return {}  # this action was learned from already (a retry or the sweeper applying it again)
    changes: dict[str, Any] = {"applied_actions": [*current.applied_actions, marker][-APPLIED_KEPT:]}
    if example is not None:
        state = learning.LearningState.from_dict(current.learned)
        known = {old.candidate_id for old in state.examples}
        for shown in passed:  # once each: what the recruiter did later to a candidate replaces a pass
            if shown.candidate_id not in known:
                state = learning.record(state, example=shown)
        state = learning.record(state, example=example)
        changes.update(learned=state.to_dict(), learning_version=current.learning_version + 1)
    if candidate_id not in current.acted_candidate_ids:
        # Bounded: the most recent acted-on candidates.
        changes["acted_candidate_ids"] = [*current.acted_candidate_ids, candidate_id][-5000:]
    return changes


async def _record_event(*, es: AsyncElasticsearch, names: IndexNames, principal: Principal, pipeline: StoredPipeline,
                        candidate_id: str, action: str, reason: str | None, candidate: dict[str, Any],
                        at: datetime) -> None:
    """Append the hiring signal, with the candidate's features at this moment, to the events index."""
    location = candidate.get("location") or {}
    features = {"title": candidate.get("title"), "occupation_codes": candidate.get("occupation_codes", []),
                "skills": candidate.get("skills", []), "company": candidate.get("company"),
                "seniority": candidate.get("seniority"), "country": location.get("country"),
                "region": location.get("region")}
    event = {
        "tenant_id": principal.tenant.tenant_id, "seat_id": principal.seat.seat_id,
        "crm_pipeline_id": pipeline.crm_pipeline_id, "candidate_id": candidate_id, "action": action,
        "reason": reason, "at": at.isoformat(), "features": features,
    }
    event["event_id"] = event_id(event)
    with map_es_errors("recording the event"):
        await ignoring(es, 409).index(index=names.events, id=event["event_id"],
                                                  document=event, op_type="create")


async def _tell(*, es: AsyncElasticsearch, names: IndexNames, settings: Settings, secret: str, principal: Principal,
                pipeline: StoredPipeline, candidate_id: str, candidate: dict[str, Any], action: Action,
                inmail: InMailIn | None) -> tuple[str | None, str | None]:
    """Queue what the CRM or the messaging provider must hear of; returns (delivery id, share URL)."""
    spec = action_type(action)
    if spec.webhook is None:
        return None, None
    tenant_id, crm_pipeline_id = principal.tenant.tenant_id, pipeline.crm_pipeline_id
    delivery_id = action_delivery_id(tenant_id, crm_pipeline_id, candidate_id, action.value)
    payload: dict[str, Any] = {"crm_pipeline_id": crm_pipeline_id, "recruiter_email": principal.seat.email,
                               "candidate": stub_profile(candidate_id, candidate)}
    share_url = None
    if spec.body is InMailIn:
        if inmail is None:
            return None, None  # a repeated InMail is refused before this; nothing to send without its message
        if inmail.share_prompt:
            claims = ShareClaims(tenant_id=tenant_id, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                                 delivery_id=delivery_id, recruiter=principal.seat.email,
                                 company=principal.tenant.name, role=pipeline.title)
            token = mint_share_token(secret=secret, ttl=timedelta(days=settings.share_link_ttl_days), claims=claims)
            share_url = f"{settings.public_base_url.rstrip('/')}/share/{token}"
        payload = {**payload, "subject": inmail.subject, "body": inmail.body, "share_url": share_url}
    await outbox.enqueue(es=es, names=names, tenant_id=tenant_id, target=spec.webhook.target,
                         event=spec.webhook.event, payload=payload, delivery_id=delivery_id,
                         crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id)
    return delivery_id, share_url


async def record_contact_shared(*, es: AsyncElasticsearch, names: IndexNames, claims: ShareClaims,
                                contact: dict[str, str]) -> bool:
    """A candidate shared contact details after an InMail: note it on their status and tell the CRM
    (`contact.shared`) once per InMail; False when it had already been told."""
    with map_es_errors("reading the candidate"):
        found = await ignoring(es, 404).get(index=names.candidates, id=claims.candidate_id)
    candidate = stub_profile(claims.candidate_id, found.get("_source", {"name": None}))
    now = datetime.now(UTC).isoformat()
    with map_es_errors("recording the shared contact"):
        await ignoring(es, 404).update(
            index=names.actions, id=action_state_id(claims.tenant_id, claims.crm_pipeline_id, claims.candidate_id),
            doc={"contact_shared_at": now, "updated_at": now},
        )
    return await outbox.enqueue(
        es=es, names=names, tenant_id=claims.tenant_id, target="crm", event="contact.shared",
        payload={"crm_pipeline_id": claims.crm_pipeline_id, "candidate": candidate, "email": contact.get("email"),
                 "phone": contact.get("phone"), "inmail_delivery_id": claims.delivery_id, "shared_at": now},
        delivery_id=contact_delivery_id(claims.delivery_id), crm_pipeline_id=claims.crm_pipeline_id,
        candidate_id=claims.candidate_id,
    )


async def statuses(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, crm_pipeline_id: str,
                   candidate_ids: list[str]) -> dict[str, str]:
    """What was done to each of these candidates for the pipeline (candidate id → status; absent: nothing)."""
    if not candidate_ids:
        return {}
    state_ids = [action_state_id(tenant_id, crm_pipeline_id, cid) for cid in candidate_ids]
    with map_es_errors("reading candidates' statuses"):
        found = await es.mget(index=names.actions, ids=state_ids, source=["candidate_id", "status"])
    if any("error" in doc for doc in found["docs"]):  # a page with holes would mislead
        raise SearchUnavailable("some statuses cannot be read right now (shards recovering)", retry_after=5)
    return {doc["_source"]["candidate_id"]: doc["_source"]["status"] for doc in found["docs"] if doc.get("found")}


async def purge_events(*, es: AsyncElasticsearch, names: IndexNames, before: datetime) -> int:
    """Retention: delete events that happened before BEFORE (what the ranking learned from them stays, as counts
    in the pipeline, without the candidates' features)."""
    return await delete_matching(es, index=names.events, query={"range": {"at": {"lt": before.isoformat()}}})
