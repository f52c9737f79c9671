"""Save, InMail, export, dismiss: each recorded once, limited, learned from, and told to the CRM."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import elasticsearch
import orjson
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel, Field

from recmatch.accounts.service import Principal
from recmatch.accounts.tokens import ShareClaims, mint_share_token
from recmatch.core.config import Settings
from recmatch.core.errors import Conflict, LimitReached, NotFound
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.pipelines.service import StoredPipeline, get_pipeline, update_pipeline
from recmatch.ranking import learning
from recmatch.webhooks import delivery


class Action(StrEnum):
    save = "save"
    inmail = "inmail"
    export = "export"
    dismiss = "dismiss"


class NotExportable(Conflict):
    """The candidate has not allowed their profile to be exported."""


class MessagingNotConfigured(Conflict):
    """The tenant has no messaging webhook, so an InMail could not be delivered: it is not recorded as sent."""


class InMailIn(BaseModel):
    subject: str = Field(min_length=1, max_length=200, description="1–200 characters")
    body: str = Field(min_length=1, max_length=5000, description="1–5000 characters")
    share_prompt: bool = Field(default=True, description="add a link where the candidate can share email and phone")


class DismissIn(BaseModel):
    reason: learning.DismissReason = Field(description="what was wrong: title, location, skills, seniority or other")
    note: str | None = Field(default=None, max_length=500)


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


_DONE_AT = {Action.save: "saved_at", Action.inmail: "inmailed_at", Action.export: "exported_at",
            Action.dismiss: "dismissed_at"}
_STATUS = {Action.save: "saved", Action.inmail: "inmailed", Action.export: "exported", Action.dismiss: "dismissed"}


def action_doc_id(tenant_id: str, crm_pipeline_id: str, candidate_id: str) -> str:
    return f"{tenant_id}:{crm_pipeline_id}:{candidate_id}"


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
    state_id = action_doc_id(tenant_id, crm_pipeline_id, candidate_id)
    with map_es_errors("reading the candidate's status"):
        state = await ignoring(es, 404).get(index=names.index("actions"), id=state_id)
    previous = state["_source"] if state.get("found") else {}
    if previous.get(_DONE_AT[action]):
        if action is Action.inmail:
            raise Conflict(f"{candidate_id} was already InMailed for this pipeline on {previous['inmailed_at'][:10]}")
        # A retry after a failure part-way: make sure the CRM hears of it (queueing is idempotent by delivery id).
        await _tell(es=es, names=names, settings=settings, secret=secret, principal=principal, pipeline=pipeline,
                    candidate_id=candidate_id, candidate=candidate, action=action, inmail=None)
        return ActionOut(action=action, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                         status=previous["status"], at=previous[_DONE_AT[action]], repeated=True,
                         learning_version=pipeline.learning_version)
    if action is Action.inmail and not principal.tenant.messaging_webhook_url:
        raise MessagingNotConfigured("InMail is not connected for this account: it has no messaging webhook "
                                     "(messaging_webhook_url), so nothing was sent; an admin can set one")
    if action is Action.export and not candidate.get("allow_export"):
        raise NotExportable(f"{candidate['name']} has not allowed their profile to be exported to a CRM")
    now = datetime.now(UTC)
    limit = {Action.export: settings.export_monthly_limit, Action.inmail: settings.inmail_monthly_allowance}.get(action)
    if limit is not None:
        await _count_usage(es=es, names=names, principal=principal, kind=action.value, limit=limit, today=now.date())

    document = {**previous, "tenant_id": tenant_id, "crm_pipeline_id": crm_pipeline_id, "candidate_id": candidate_id,
                "status": _STATUS[action], "seat_id": principal.seat.seat_id, _DONE_AT[action]: now.isoformat(),
                "updated_at": now.isoformat()}
    if dismissal is not None:
        document["dismiss_reason"] = dismissal.reason
    concurrency = ({"if_seq_no": state["_seq_no"], "if_primary_term": state["_primary_term"]}
                   if state.get("found") else {"op_type": "create"})
    try:
        with map_es_errors("recording the action"):
            await es.index(index=names.index("actions"), id=state_id, document=document, **concurrency)
    except elasticsearch.ConflictError:
        raise Conflict(f"another action on {candidate_id} was recorded at the same moment; retry") from None

    # The status is recorded (the guard against doing it twice); the rest is independent: write it at once.
    features = learning.features_of(candidate)
    reason = dismissal.reason if dismissal else None
    _, learned, (delivery_id, share_url) = await asyncio.gather(
        _record_event(es=es, names=names, principal=principal, pipeline=pipeline, candidate_id=candidate_id,
                      action=action.value, reason=reason, candidate=candidate, at=now),
        update_pipeline(es=es, names=names, pipeline=pipeline, change=lambda current: _learn(
            current, features=features, action=action, candidate_id=candidate_id, reason=reason)),
        _tell(es=es, names=names, settings=settings, secret=secret, principal=principal, pipeline=pipeline,
              candidate_id=candidate_id, candidate=candidate, action=action, inmail=inmail),
    )
    return ActionOut(action=action, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                     status=_STATUS[action], at=now, repeated=False, delivery_id=delivery_id, share_url=share_url,
                     learning_version=learned.learning_version)


def _learn(current: StoredPipeline, *, features: learning.CandidateFeatures, action: Action, candidate_id: str,
           reason: learning.DismissReason | None) -> dict[str, Any]:
    counts = learning.FeedbackCounts.from_dict(current.learned) if current.learned else learning.FeedbackCounts()
    counts = learning.record(counts, features=features, signal=action.value, reason=reason)
    acted = [*current.acted_candidate_ids, candidate_id][-5000:]  # bounded: the most recent acted-on candidates
    return {"learned": counts.to_dict(), "learning_version": current.learning_version + 1,
            "acted_candidate_ids": acted}


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
    event["event_id"] = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    with map_es_errors("recording the event"):
        await ignoring(es, 409).index(index=names.index("events"), id=event["event_id"],
                                                  document=event, op_type="create")


async def _tell(*, es: AsyncElasticsearch, names: IndexNames, settings: Settings, secret: str, principal: Principal,
                pipeline: StoredPipeline, candidate_id: str, candidate: dict[str, Any], action: Action,
                inmail: InMailIn | None) -> tuple[str | None, str | None]:
    """Queue what the CRM or the messaging provider must hear of; returns (delivery id, share URL)."""
    tenant_id, crm_pipeline_id = principal.tenant.tenant_id, pipeline.crm_pipeline_id
    delivery_id = f"{action_doc_id(tenant_id, crm_pipeline_id, candidate_id)}:{action.value}"
    common = {"crm_pipeline_id": crm_pipeline_id, "recruiter_email": principal.seat.email,
              "candidate": stub_profile(candidate_id, candidate)}
    share_url = None
    if action is Action.save:
        target, event, payload = "crm", "prospect.saved", common
    elif action is Action.export:
        target, event, payload = "crm", "profile.exported", common
    elif action is Action.inmail and inmail is not None:
        if inmail.share_prompt:
            claims = ShareClaims(tenant_id=tenant_id, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id,
                                 delivery_id=delivery_id, recruiter=principal.seat.email,
                                 company=principal.tenant.name, role=pipeline.title)
            token = mint_share_token(secret=secret, ttl=timedelta(days=settings.share_link_ttl_days), claims=claims)
            share_url = f"{settings.public_base_url.rstrip('/')}/share/{token}"
        target, event = "messaging", "inmail.sent"
        payload = {**common, "subject": inmail.subject, "body": inmail.body, "share_url": share_url}
    else:
        return None, None
    await delivery.enqueue(es=es, names=names, tenant_id=tenant_id, target=target, event=event, payload=payload,
                           delivery_id=delivery_id, crm_pipeline_id=crm_pipeline_id, candidate_id=candidate_id)
    return delivery_id, share_url


def month_reset(today: date) -> date:
    """The first day of the next calendar month, when monthly limits reset."""
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


async def _count_usage(*, es: AsyncElasticsearch, names: IndexNames, principal: Principal, kind: str, limit: int,
                       today: date) -> int:
    """Count one more KIND for the seat this month, or raise LimitReached; safe across processes."""
    month = f"{today:%Y-%m}"
    usage_id = f"{principal.tenant.tenant_id}:{principal.seat.seat_id}:{month}:{kind}"
    label = {"export": "exports", "inmail": "InMails"}[kind]
    for _ in range(5):
        with map_es_errors("counting usage"):
            found = await ignoring(es, 404).get(index=names.index("usage"), id=usage_id)
        used = found["_source"]["count"] if found.get("found") else 0
        if used >= limit:
            raise LimitReached(f"this seat has used its {limit} {label} for {month}; the allowance resets on "
                               f"{month_reset(today).isoformat()}", retry_after=int(
                                   (datetime.combine(month_reset(today), datetime.min.time(), UTC)
                                    - datetime.now(UTC)).total_seconds()))
        document = {"tenant_id": principal.tenant.tenant_id, "seat_id": principal.seat.seat_id, "kind": kind,
                    "month": month, "count": used + 1, "updated_at": datetime.now(UTC).isoformat()}
        concurrency = ({"if_seq_no": found["_seq_no"], "if_primary_term": found["_primary_term"]}
                       if found.get("found") else {"op_type": "create"})
        try:
            with map_es_errors("counting usage"):
                await es.index(index=names.index("usage"), id=usage_id, document=document, **concurrency)
            return used + 1
        except elasticsearch.ConflictError:
            continue  # another process counted at the same moment: read again
    raise Conflict(f"too many {label} at the same moment for this seat; retry")


# -- idempotency ---------------------------------------------------------------------------------------


def request_hash(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def idempotent(
    *, es: AsyncElasticsearch, names: IndexNames, principal: Principal, key: str | None, fingerprint: str,
    run: Callable[[], Awaitable[BaseModel]],
) -> dict[str, Any]:
    """Run once per Idempotency-Key: the same key and request get the stored answer; another request, 409."""
    if key is None:
        return (await run()).model_dump(mode="json")
    record_id = f"{principal.tenant.tenant_id}:{principal.seat.seat_id}:{key}"
    index = names.index("idempotency")
    with map_es_errors("reading the idempotency key"):
        found = await ignoring(es, 404).get(index=index, id=record_id)
    if found.get("found"):
        return _replay(found["_source"], fingerprint, key)
    response = (await run()).model_dump(mode="json")
    record = {"tenant_id": principal.tenant.tenant_id, "seat_id": principal.seat.seat_id,
              "request_hash": fingerprint, "status_code": 200, "response": response,
              "created_at": datetime.now(UTC).isoformat()}
    try:
        with map_es_errors("storing the idempotency key"):
            await es.index(index=index, id=record_id, document=record, op_type="create")
    except elasticsearch.ConflictError:
        stored = await es.get(index=index, id=record_id)
        return _replay(stored["_source"], fingerprint, key)
    return response


def _replay(record: dict[str, Any], fingerprint: str, key: str) -> dict[str, Any]:
    if record["request_hash"] != fingerprint:
        raise Conflict(f"Idempotency-Key {key!r} was already used for a different request")
    return record["response"]

