"""No half-done action: each step after an action is recorded fails in turn on the real node (a write block on its
index), and the action is then completed by a retry or by the sweeper, exactly once. Also the Idempotency-Key
replay checks and ids that cannot collide (issue 13, findings 5 and 7)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from recmatch.actions import completion
from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, make_async_client
from recmatch.core.ids import action_delivery_id, action_state_id, pipeline_doc_id
from tests.integration.support import Seats, make_tenant

PIPELINE = {"title": "Registered Nurse", "locations": ["Boston, MA", "Remote"], "skills": ["Epic Systems"],
            "remote_ok": True, "radius_km": 100}


@contextmanager
def write_blocked(es: Elasticsearch, index: str) -> Iterator[None]:
    """The index refuses writes (as at disk flood stage, or an operator's block) for the duration of the block."""
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    try:
        yield
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.write": None})


class Probe:
    """What a real node holds of one candidate's action on one pipeline."""

    def __init__(self, es: Elasticsearch, settings: Settings, seats: Seats, pipeline_id: str, candidate_id: str):
        self.es, self.names = es, IndexNames(settings.index_prefix)
        self.tenant_id, self.pipeline_id, self.candidate_id = seats.tenant.tenant_id, pipeline_id, candidate_id

    def state(self) -> dict[str, Any]:
        return self.es.get(index=self.names.actions,
                           id=action_state_id(self.tenant_id, self.pipeline_id, self.candidate_id))["_source"]

    def pipeline(self) -> dict[str, Any]:
        return self.es.get(index=self.names.pipelines, id=pipeline_doc_id(self.tenant_id, self.pipeline_id))["_source"]

    def events(self) -> int:
        self.es.indices.refresh(index=self.names.events)
        return self.es.count(index=self.names.events, query={"bool": {"filter": [
            {"term": {"tenant_id": self.tenant_id}}, {"term": {"crm_pipeline_id": self.pipeline_id}},
            {"term": {"candidate_id": self.candidate_id}}, {"term": {"action": "save"}}]}})["count"]

    def delivery(self) -> bool:
        return self.es.exists(index=self.names.outbox, id=action_delivery_id(
            self.tenant_id, self.pipeline_id, self.candidate_id, "save"))

    def assert_complete(self, learning_before: int) -> None:
        """Every step applied, once: the event, the learning, the exclusion, the outbox entry; nothing pending."""
        state = self.state()
        assert state["status"] == "saved" and not state.get("pending") and state.get("pending_since") is None
        pipeline = self.pipeline()
        assert self.candidate_id in pipeline["acted_candidate_ids"]
        assert pipeline["learning_version"] == learning_before + 1  # learned from exactly once
        assert self.events() == 1
        assert self.delivery()


def _prepare(app_client: TestClient, seats: Seats, pipeline_id: str) -> str:
    assert app_client.put(f"/v1/pipelines/{pipeline_id}", json=PIPELINE,
                          headers=seats.auth(seats.recruiter)).status_code in (200, 201)
    listing = app_client.get(f"/v1/pipelines/{pipeline_id}/matches", headers=seats.auth(seats.recruiter)).json()
    return listing["candidates"][0]["candidate_id"]


def _sweep(settings: Settings) -> int:
    async def work() -> int:
        es = make_async_client(settings)
        try:
            return await completion.sweep(es=es, names=IndexNames(settings.index_prefix), settings=settings,
                                          secret="test-secret", older_than=0)
        finally:
            await es.close()

    return asyncio.run(work())


@pytest.mark.parametrize("step", ["events", "pipelines", "outbox"])
@pytest.mark.parametrize("completed_by", ["retry", "sweeper"])
def test_an_action_whose_later_step_fails_is_completed_exactly_once(
        app_client: TestClient, seats: Seats, es: Elasticsearch, api_settings: Settings, step: str,
        completed_by: str):
    pipeline_id = f"p-half-{step}-{completed_by}"
    candidate_id = _prepare(app_client, seats, pipeline_id)
    probe = Probe(es, api_settings, seats, pipeline_id, candidate_id)
    learning_before = probe.pipeline()["learning_version"]
    save = f"/v1/pipelines/{pipeline_id}/candidates/{candidate_id}/save"
    with write_blocked(es, getattr(probe.names, step)):
        failed = app_client.post(save, headers=seats.auth(seats.recruiter))
        assert failed.status_code == 503 and failed.json()["type"] == "SearchUnavailable", failed.text
        # The action is recorded, with what is still to do.
        assert probe.state()["status"] == "saved" and probe.state()["pending"]["save"]["candidate_id"] == candidate_id
    if completed_by == "retry":
        retried = app_client.post(save, headers=seats.auth(seats.recruiter))
        assert retried.status_code == 200 and retried.json()["repeated"] is True, retried.text
        assert retried.json()["learning_version"] == learning_before + 1
    else:
        assert _sweep(api_settings) >= 1
    probe.assert_complete(learning_before)
    # Neither a later retry nor another sweep applies anything twice.
    assert app_client.post(save, headers=seats.auth(seats.recruiter)).json()["repeated"] is True
    _sweep(api_settings)
    probe.assert_complete(learning_before)
    listing = app_client.get(f"/v1/pipelines/{pipeline_id}/matches", headers=seats.auth(seats.recruiter)).json()
    assert candidate_id not in [c["candidate_id"] for c in listing["candidates"]]  # the exclusion holds


def test_a_failed_step_answers_503_and_the_next_try_still_counts_one_action(
        app_client: TestClient, seats: Seats, es: Elasticsearch, api_settings: Settings):
    """Every step blocked at once, twice over, then released: one event, one learning, one delivery."""
    pipeline_id = "p-half-all"
    candidate_id = _prepare(app_client, seats, pipeline_id)
    probe = Probe(es, api_settings, seats, pipeline_id, candidate_id)
    learning_before = probe.pipeline()["learning_version"]
    save = f"/v1/pipelines/{pipeline_id}/candidates/{candidate_id}/save"
    names = probe.names
    with write_blocked(es, names.events), write_blocked(es, names.pipelines), write_blocked(es, names.outbox):
        for _ in range(2):
            assert app_client.post(save, headers=seats.auth(seats.recruiter)).status_code == 503
    assert app_client.post(save, headers=seats.auth(seats.recruiter)).status_code == 200
    probe.assert_complete(learning_before)


# -- Idempotency-Key replays --------------------------------------------------------------------------------


def test_an_idempotent_replay_checks_scope_and_visibility_first(app_client: TestClient, api_settings: Settings):
    # InMail needs a messaging webhook (nothing is sent here: the worker's tries just fail and retry later).
    seats = make_tenant(api_settings, messaging_webhook_url="http://127.0.0.1:9/messaging")
    rita = seats.auth(seats.recruiter)
    candidate_id = _prepare(app_client, seats, "p-replay-y")
    _prepare(app_client, seats, "p-replay-x")
    inmail = {"subject": "Hello", "body": "Shall we talk?", "share_prompt": True}
    first = app_client.post(f"/v1/pipelines/p-replay-y/candidates/{candidate_id}/inmail", json=inmail,
                            headers={**rita, "Idempotency-Key": "k-replay"})
    assert first.status_code == 200 and first.json()["share_url"], first.text
    # A widget token of the same seat, scoped to pipeline X, replays the key on pipeline Y: refused.
    token = app_client.post("/v1/pipelines/p-replay-x/widget-token", headers=rita).json()["token"]
    replay = app_client.post(f"/v1/pipelines/p-replay-y/candidates/{candidate_id}/inmail", json=inmail,
                             headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-replay"})
    assert replay.status_code == 403 and "share" not in replay.text, replay.text
    # The pipeline is restricted to someone else meanwhile: the key no longer answers for it either.
    assert app_client.put("/v1/pipelines/p-replay-y", headers=seats.auth(seats.admin), json={
        **PIPELINE, "access_restricted": True, "owner_email": "otto@example.com"}).status_code == 200
    hidden = app_client.post(f"/v1/pipelines/p-replay-y/candidates/{candidate_id}/inmail", json=inmail,
                             headers={**rita, "Idempotency-Key": "k-replay"})
    assert hidden.status_code == 404 and "share" not in hidden.text
    # The seat that may act still gets the stored answer (the same share link, nothing sent again).
    assert app_client.put("/v1/pipelines/p-replay-y", headers=seats.auth(seats.admin), json={
        **PIPELINE, "access_restricted": True, "owner_email": "rita@example.com"}).status_code == 200
    again = app_client.post(f"/v1/pipelines/p-replay-y/candidates/{candidate_id}/inmail", json=inmail,
                            headers={**rita, "Idempotency-Key": "k-replay"})
    assert again.status_code == 200 and again.json() == first.json()


# -- ids that cannot collide --------------------------------------------------------------------------------


def test_ids_whose_parts_contain_the_separator_never_collide(app_client: TestClient, seats: Seats,
                                                             operator_key: str, es: Elasticsearch,
                                                             api_settings: Settings):
    rita, operator = seats.auth(seats.recruiter), seats.auth(operator_key)
    for candidate_id in ("c-1", "x:c-1"):
        assert app_client.put(f"/v1/admin/candidates/{candidate_id}", headers=operator, json={
            "candidate_id": candidate_id, "name": "Colin Lision", "title": "Registered Nurse"}).status_code == 200
    for pipeline_id in ("p-col:x", "p-col"):
        app_client.put(f"/v1/pipelines/{pipeline_id}", json=PIPELINE, headers=rita)
    first = app_client.post("/v1/pipelines/p-col:x/candidates/c-1/save", headers=rita)
    second = app_client.post("/v1/pipelines/p-col/candidates/x:c-1/save", headers=rita)
    assert first.status_code == second.status_code == 200
    assert first.json()["repeated"] is False and second.json()["repeated"] is False  # both recorded
    assert first.json()["delivery_id"] != second.json()["delivery_id"]  # both sent
    names = IndexNames(api_settings.index_prefix)
    for delivery_id in (first.json()["delivery_id"], second.json()["delivery_id"]):
        assert es.exists(index=names.outbox, id=delivery_id)
