"""Elasticsearch stopped under traffic: 503 with Retry-After, readiness red, nothing accepted lost, resumes by itself.

A real `recmatch serve` process runs against our own node (tests/faults/conftest.py) while a client reads matches and
acts on candidates; the node is stopped by its pid, then started again; the same API process must recover alone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from recmatch.core.es import IndexNames, make_client
from recmatch.indexing import reindex as indexing
from recmatch.ops.cluster import prepare_cluster
from tests.faults.conftest import FaultNode
from tests.faults.support import (
    DeliveryStore,
    IdempotentReceiver,
    free_port,
    served_api,
    wait_until,
    write_candidates,
)
from tests.integration.support import Seats, make_tenant

pytestmark = pytest.mark.faults

PIPELINE_ID = "p-outage"
PIPELINE = {"title": "Software Engineer", "locations": ["Austin, TX"], "skills": ["Python"], "radius_km": 50}
POOL = 400
ACTIONS = ("save", "dismiss", "inmail", "export")
BODIES: dict[str, dict[str, Any] | None] = {
    "save": None, "export": None, "dismiss": {"reason": "skills"},
    "inmail": {"subject": "A role in Austin", "body": "Hello, would you like to talk?"},
}
MAX_ITERATIONS = 300  # the client loop is bounded in count and in time
MAX_SECONDS = 240.0


@dataclass
class Call:
    at: float
    method: str
    path: str
    status: int | None  # None: no answer at all (the API process itself failed)
    retry_after: str | None
    text: str
    key: str | None = None
    action: str | None = None
    candidate_id: str | None = None


class Traffic(threading.Thread):
    """A recruiter's client: read a page of matches, act on the next candidate, again; every answer recorded."""

    def __init__(self, base_url: str, auth: dict[str, str], *, pipeline_id: str = PIPELINE_ID,
                 key_prefix: str = "traffic") -> None:
        super().__init__(name="traffic", daemon=True)
        self.pipeline_id, self.key_prefix = pipeline_id, key_prefix
        self.client = httpx.Client(base_url=base_url, headers=auth, timeout=60)
        self.calls: list[Call] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        for number in range(MAX_ITERATIONS):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            self.call("GET", f"/v1/pipelines/{self.pipeline_id}/matches",
                      params={"page": number % 3 + 1, "page_size": 10})
            action = ACTIONS[number % len(ACTIONS)]
            self.act(action, f"c-{number:06d}", key=f"{self.key_prefix}-{number}")
            time.sleep(0.05)

    def act(self, action: str, candidate_id: str, *, key: str) -> Call:
        return self.call("POST", f"/v1/pipelines/{self.pipeline_id}/candidates/{candidate_id}/{action}",
                         json=BODIES[action], headers={"Idempotency-Key": key}, key=key, action=action,
                         candidate_id=candidate_id)

    def call(self, method: str, path: str, *, key: str | None = None, action: str | None = None,
             candidate_id: str | None = None, **kwargs: Any) -> Call:
        try:
            response = self.client.request(method, path, **kwargs)
            status, retry_after, text = response.status_code, response.headers.get("Retry-After"), response.text
        except httpx.HTTPError as exc:
            status, retry_after, text = None, None, f"{type(exc).__name__}: {exc}"
        call = Call(time.monotonic(), method, path, status, retry_after, text, key, action, candidate_id)
        with self.lock:
            self.calls.append(call)
        return call

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)

    def accepted_actions(self, since: float = 0.0) -> list[Call]:
        return [c for c in self.snapshot() if c.action and c.status is not None and c.status < 300 and c.at >= since]


def _is_clean_503(call: Call) -> bool:
    """503, a Retry-After in seconds, the one error shape, and nothing of a stack trace."""
    if call.status != 503 or not (call.retry_after or "").isdigit() or int(call.retry_after) <= 0:
        return False
    try:
        body = httpx.Response(503, text=call.text).json()
    except ValueError:
        return False
    return set(body) == {"type", "detail"} and "Traceback" not in call.text and 'File "' not in call.text


@pytest.fixture
def outage_setup(fault_node: FaultNode, tmp_path: Path) -> tuple[FaultNode, Seats, IdempotentReceiver]:
    settings = fault_node.settings
    es = make_client(settings)
    try:
        prepare_cluster(settings)
        source = write_candidates(tmp_path / "pool.jsonl", POOL)
        indexing.reindex(es=es, settings=settings, source=source, rejects_path=tmp_path / "rejects.jsonl")
    finally:
        es.close()
    receiver = IdempotentReceiver(DeliveryStore(), port=free_port()).start()
    seats = make_tenant(settings, webhook_url=f"{receiver.url}/crm", messaging_webhook_url=f"{receiver.url}/messaging")
    receiver.store.secret = seats.tenant.webhook_secret.get_secret_value()
    yield fault_node, seats, receiver
    receiver.stop()


def test_elasticsearch_stopped_under_traffic_gives_503_loses_nothing_and_resumes(
    outage_setup: tuple[FaultNode, Seats, IdempotentReceiver], tmp_path: Path
) -> None:
    fault_node, seats, receiver = outage_setup
    settings = fault_node.settings
    figures: dict[str, Any] = {}
    with served_api(settings, tmp_path, RECMATCH_DELIVERY_POLL_INTERVAL="0.2") as api:
        probe = httpx.Client(base_url=api.url, headers=seats.auth(seats.recruiter), timeout=60)
        assert probe.put(f"/v1/pipelines/{PIPELINE_ID}", json=PIPELINE).status_code == 201
        traffic = Traffic(api.url, seats.auth(seats.recruiter))
        traffic.start()
        try:
            wait_until(lambda: len(traffic.accepted_actions()) >= 8, timeout=60, what="8 actions accepted")

            stopped_at = time.monotonic()
            fault_node.stop()
            figures["stop_s"] = round(time.monotonic() - stopped_at, 1)
            down_since = time.monotonic()

            # While the node is down: liveness green, readiness red, every call a clean 503.
            assert probe.get("/healthz").status_code == 200
            ready = probe.get("/readyz")
            assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0, ready.text
            asked = time.monotonic()
            matches = traffic.call("GET", f"/v1/pipelines/{PIPELINE_ID}/matches")
            figures["503_after_s"] = round(time.monotonic() - asked, 2)
            assert _is_clean_503(matches), matches
            assert httpx.Response(503, text=matches.text).json()["type"] == "SearchUnavailable"
            refused = traffic.act("save", f"c-{POOL - 1:06d}", key="probe-save")
            assert _is_clean_503(refused), refused
            wait_until(lambda: sum(c.status == 503 and c.at > down_since for c in traffic.snapshot()) >= 4,
                       timeout=60, what="the client saw 503s while the node was down")
            figures["outage_503s_before_restart"] = sum(c.status == 503 for c in traffic.snapshot())

            restarted_at = time.monotonic()
            fault_node.start()
            figures["node_restart_s"] = round(time.monotonic() - restarted_at, 1)
            healthy_at = time.monotonic()

            def serving() -> bool:
                return (probe.get("/readyz").status_code == 200
                        and probe.get(f"/v1/pipelines/{PIPELINE_ID}/matches").status_code == 200)

            figures["resumed_after_node_healthy_s"] = round(wait_until(serving, timeout=60, every=0.25,
                                                                       what="the API serves again"), 2)
            assert api.process.poll() is None, "the API process must survive the outage, not be restarted"
            resumed_at = time.monotonic()
            wait_until(lambda: len(traffic.accepted_actions(since=resumed_at)) >= 6, timeout=60,
                       what="actions accepted again after the node came back")
        finally:
            traffic.stop.set()
            traffic.join(timeout=120)
        figures["outage_s"] = round(healthy_at - down_since, 1)

        # A client retries what got a 503, with the same Idempotency-Key (as Retry-After invites it to).
        calls = traffic.snapshot()
        refused_actions = [c for c in calls if c.action and c.status == 503]
        retried = {c.key: traffic.act(c.action, c.candidate_id, key=c.key) for c in refused_actions}
        calls = traffic.snapshot()

        # Nothing but success and clean 503s, from the first call to the last.
        unexpected = [c for c in calls if not (c.status is not None and c.status < 300) and not _is_clean_503(c)]
        assert not unexpected, [(round(c.at - down_since, 2), c.method, c.path, c.status, c.text[:160])
                                for c in unexpected[:8]] + [f"node healthy again at {healthy_at - down_since:.2f} s"]
        retried_badly = {key: (c.status, c.text[:200]) for key, c in retried.items() if not c.status or c.status >= 300}
        assert not retried_badly, retried_badly

        accepted = {c.key: c for c in calls if c.action and c.status is not None and c.status < 300}
        figures.update(requests=len(calls), ok=sum(c.status is not None and c.status < 300 for c in calls),
                       answered_503=sum(c.status == 503 for c in calls), accepted_actions=len(accepted),
                       retried_after_503=len(retried))
        _assert_nothing_accepted_was_lost(fault_node, seats, accepted, receiver, figures)
        api_log = api.log_text()
        traffic.client.close()
        probe.close()
    # Every failure was an expected one: nothing reached the catch-all handler that answers 500.
    assert "unhandled error" not in api_log
    print(f"\nElasticsearch outage figures: {figures}")


def _assert_nothing_accepted_was_lost(fault_node: FaultNode, seats: Seats, accepted: dict[str, Call],
                                      receiver: IdempotentReceiver, figures: dict[str, Any]) -> None:
    """Every action that got a 2xx is in the actions and events indices, and its webhook reached the receiver."""
    names = IndexNames(fault_node.settings.index_prefix)
    es = make_client(fault_node.settings)
    tenant_id = seats.tenant.tenant_id
    try:
        es.indices.refresh(index=names.events)
        expected_deliveries = set()
        for call in accepted.values():
            state = es.get(index=names.actions, id=f"{tenant_id}:{PIPELINE_ID}:{call.candidate_id}")
            answer = httpx.Response(200, text=call.text).json()
            assert state["_source"]["status"] == answer["status"], (call, state["_source"])
            events = es.count(index=names.events, query={"bool": {"filter": [
                {"term": {"tenant_id": tenant_id}}, {"term": {"candidate_id": call.candidate_id}},
                {"term": {"action": call.action}}]}})["count"]
            assert events >= 1, f"no event for the accepted {call.action} of {call.candidate_id}"
            if answer["delivery_id"]:
                outbox = es.options(ignore_status=404).get(index=names.outbox, id=answer["delivery_id"])
                assert outbox.get("found"), f"no outbox entry for {answer['delivery_id']}"
                expected_deliveries.add(answer["delivery_id"])
            elif call.action != "dismiss":
                raise AssertionError(f"the accepted {call.action} of {call.candidate_id} queued no delivery: {answer}")
    finally:
        es.close()
    # The API's own delivery worker kept going through the outage and sends everything, each once at the receiver.
    figures["deliveries_after_resume_s"] = round(wait_until(
        lambda: expected_deliveries <= set(receiver.store.stored), timeout=90, every=0.25,
        what=f"{len(expected_deliveries)} deliveries reach the receiver"), 1)
    figures["deliveries"] = len(expected_deliveries)
    figures["delivery_raw_duplicates"] = receiver.store.duplicates
    assert receiver.store.bad_signatures == 0
