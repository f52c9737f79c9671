"""Outbox delivery against a real Elasticsearch and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from recmatch.accounts import service as accounts
from recmatch.api.errors import install_error_handlers
from recmatch.api.routes import deliveries
from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, ensure_indices, make_async_client
from recmatch.webhooks import outbox, worker
from tests.integration.support import Seats, make_tenant, run_async
from tests.integration.webhook_receiver import WebhookReceiver

_prefixes = itertools.count(1)
STUB = {"member_id": "c-000123", "name": "Ada Park", "current_title": "Senior Software Engineer",
        "employer": "Acme Pay", "headline": "Backend engineer, payments", "location": "Austin, TX, US",
        "profile_url": "https://example.org/in/ada-park"}


@pytest.fixture
def cfg(settings: Settings, es: Elasticsearch) -> Iterator[Settings]:
    """Settings with this test's own outbox and accounts, tiny backoffs and a short timeout."""
    test_settings = settings.model_copy(update={
        "index_prefix": f"{settings.index_prefix}-dl{next(_prefixes)}",
        "delivery_max_attempts": 3, "delivery_backoff_base": 0.02, "delivery_backoff_cap": 0.1,
        "delivery_timeout": 0.5, "delivery_poll_interval": 0.05,
    })
    names = IndexNames(test_settings.index_prefix)
    ensure_indices(es, names, "accounts", "outbox")
    # Tenants and seats are written with refresh=wait_for (about 1 s each at the default interval): speed that up.
    es.indices.put_settings(index=names.accounts, settings={"index": {"refresh_interval": "50ms"}})
    yield test_settings
    made = es.options(ignore_status=404).indices.get(index=f"{test_settings.index_prefix}-*", expand_wildcards="all")
    if made:
        es.indices.delete(index=",".join(made))


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(hang_seconds=3.0).start()
    yield server
    server.stop()


def tenant_for(cfg: Settings, receiver: WebhookReceiver, *, crm: bool = True, messaging: bool = True) -> Seats:
    seats = make_tenant(cfg, webhook_url=f"{receiver.url}/crm" if crm else None,
                        messaging_webhook_url=f"{receiver.url}/messaging" if messaging else None)
    receiver.secret = seats.tenant.webhook_secret.get_secret_value()
    return seats


def enqueue(cfg: Settings, seats: Seats, delivery_id: str, *, event: str = "prospect.saved", target: str = "crm",
            payload: dict[str, Any] | None = None) -> bool:
    return run_async(cfg, lambda es, names: outbox.enqueue(
        es=es, names=names, tenant_id=seats.tenant.tenant_id, target=target, event=event, delivery_id=delivery_id,
        payload=payload if payload is not None else {"crm_pipeline_id": "p-1", "candidate": STUB},
        crm_pipeline_id="p-1", candidate_id="c-000123"))


def entry(es: Elasticsearch, cfg: Settings, delivery_id: str) -> dict[str, Any]:
    return es.get(index=IndexNames(cfg.index_prefix).outbox, id=delivery_id)["_source"]


def deliver_until(cfg: Settings, done: Callable[[], bool], *, worker_id: str = "w-test",
                  deadline_s: float = 20.0, limit: int = 50) -> list[worker.DeliveryRound]:
    """Run worker rounds until `done()` holds (fails past the deadline); returns the rounds."""

    async def run(es: AsyncElasticsearch, names: IndexNames) -> list[worker.DeliveryRound]:
        rounds: list[worker.DeliveryRound] = []
        deadline = time.monotonic() + deadline_s
        async with worker.make_http_client() as http:
            while not done():
                assert time.monotonic() < deadline, f"not done after {deadline_s} s: {rounds}"
                rounds.append(await worker.deliver_due(es=es, names=names, settings=cfg, worker_id=worker_id,
                                                         http=http, limit=limit))
                await asyncio.sleep(0.01)
        return rounds

    return run_async(cfg, run)


def status_is(es: Elasticsearch, cfg: Settings, delivery_id: str, status: str) -> Callable[[], bool]:
    return lambda: entry(es, cfg, delivery_id)["status"] == status


@pytest.fixture
def admin_api(cfg: Settings) -> Iterator[TestClient]:
    """The deliveries router with the API's error handlers and app state, as create_app sets them up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = cfg
        app.state.es = make_async_client(cfg)
        app.state.key_cache = accounts.KeyCache(ttl=cfg.auth_cache_seconds)
        try:
            yield
        finally:
            await app.state.es.close()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(deliveries.router)
    with TestClient(app) as client:
        yield client


# -- delivery -----------------------------------------------------------------------------------------------


def test_a_tenant_on_the_plain_json_format_gets_the_bare_payload_signed_its_way(
        cfg: Settings, es: Elasticsearch) -> None:
    """A second CRM format (webhooks/formats/plain_json.py), chosen per tenant: no envelope, its own headers."""
    plain = WebhookReceiver(webhook_format="plain-json").start()
    try:
        seats = make_tenant(cfg, webhook_url=f"{plain.url}/crm", webhook_format="plain-json")
        plain.secret = seats.tenant.webhook_secret.get_secret_value()
        assert enqueue(cfg, seats, "d-plain")
        deliver_until(cfg, status_is(es, cfg, "d-plain", "delivered"))
        (request,) = plain.requests_for("d-plain")
        assert request.signature_ok and request.answered == 200
        assert request.event == "prospect.saved"
        assert request.body == {"crm_pipeline_id": "p-1", "candidate": STUB}  # the payload alone, no envelope
    finally:
        plain.stop()


def test_delivered_once_with_a_valid_signature(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    assert enqueue(cfg, seats, "d-saved")

    rounds = deliver_until(cfg, status_is(es, cfg, "d-saved", "delivered"))

    [request] = receiver.received
    assert request.signature_ok and request.answered == 200
    assert (request.path, request.delivery_id, request.event) == ("/crm", "d-saved", "prospect.saved")
    assert request.attempt == 1
    stored = entry(es, cfg, "d-saved")
    assert request.body == {"id": "d-saved", "event": "prospect.saved", "created_at": stored["created_at"],
                            "tenant_id": seats.tenant.tenant_id, "data": {"crm_pipeline_id": "p-1", "candidate": STUB}}
    assert stored["attempts"] == 1 and stored["last_status_code"] == 200 and stored["delivered_at"]
    assert stored["claimed_by"] is None
    assert sum(r.delivered for r in rounds) == 1


def test_inmail_goes_to_the_messaging_webhook(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    enqueue(cfg, seats, "d-inmail", event="inmail.sent", target="messaging",
            payload={"subject": "Backend role", "body": "Hi Ada", "candidate": STUB, "share_link": "https://x/s/1"})

    deliver_until(cfg, status_is(es, cfg, "d-inmail", "delivered"))

    [request] = receiver.received
    assert (request.path, request.event, request.signature_ok) == ("/messaging", "inmail.sent", True)
    assert request.body["data"]["subject"] == "Backend role"


def test_retried_after_500s_then_delivered(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    receiver.then("fail", "fail")
    enqueue(cfg, seats, "d-flaky")

    rounds = deliver_until(cfg, status_is(es, cfg, "d-flaky", "delivered"))

    requests = receiver.requests_for("d-flaky")
    assert [(r.attempt, r.answered) for r in requests] == [(1, 500), (2, 500), (3, 200)]
    assert all(r.signature_ok for r in requests)
    assert len({r.body["created_at"] for r in requests}) == 1  # the same body every try
    stored = entry(es, cfg, "d-flaky")
    assert stored["attempts"] == 3 and stored["last_status_code"] == 200
    assert "answered 500" in stored["last_error"]
    assert sum(r.retrying for r in rounds) == 2


def test_timeout_then_delivered(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    receiver.then("hang")
    enqueue(cfg, seats, "d-slow")

    deliver_until(cfg, status_is(es, cfg, "d-slow", "delivered"))

    assert [(r.attempt, r.answered) for r in receiver.requests_for("d-slow")] == [(1, None), (2, 200)]
    stored = entry(es, cfg, "d-slow")
    assert stored["attempts"] == 2
    assert "no answer" in stored["last_error"] and "within 0.5 s" in stored["last_error"]


def test_connection_refused_is_a_failed_try(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    run_async(cfg, lambda es_, names: accounts.update_tenant(
        es=es_, names=names, tenant_id=seats.tenant.tenant_id, webhook_url=f"http://127.0.0.1:{closed_port}/crm"))
    enqueue(cfg, seats, "d-refused")

    deliver_until(cfg, status_is(es, cfg, "d-refused", "dead"))

    stored = entry(es, cfg, "d-refused")
    assert stored["attempts"] == 3 and stored["last_status_code"] is None
    assert "could not connect" in stored["last_error"] and "gave up after 3 tries" in stored["last_error"]


def test_tenant_without_a_webhook_url_is_dead_with_the_reason(
    cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver
) -> None:
    seats = tenant_for(cfg, receiver, crm=False, messaging=False)
    enqueue(cfg, seats, "d-no-crm")
    enqueue(cfg, seats, "d-no-messaging", event="inmail.sent", target="messaging")

    deliver_until(cfg, lambda: all(entry(es, cfg, d)["status"] == "dead" for d in ("d-no-crm", "d-no-messaging")))

    assert receiver.received == []
    no_crm, no_messaging = entry(es, cfg, "d-no-crm"), entry(es, cfg, "d-no-messaging")
    assert "has no crm webhook URL (webhook_url)" in no_crm["last_error"]
    assert "has no messaging webhook URL (messaging_webhook_url)" in no_messaging["last_error"]
    assert no_crm["attempts"] == 1 and no_crm["dead_at"]


def test_enqueue_is_idempotent(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    assert enqueue(cfg, seats, "d-once", payload={"n": 1}) is True
    assert enqueue(cfg, seats, "d-once", payload={"n": 2}) is False

    deliver_until(cfg, status_is(es, cfg, "d-once", "delivered"))
    assert enqueue(cfg, seats, "d-once", payload={"n": 3}) is False  # delivered: still not sent again

    es.indices.refresh(index=IndexNames(cfg.index_prefix).outbox)
    assert es.count(index=IndexNames(cfg.index_prefix).outbox)["count"] == 1
    assert [r.body["data"] for r in receiver.received] == [{"n": 1}]
    assert entry(es, cfg, "d-once")["status"] == "delivered"


def test_an_expired_claim_of_a_crashed_worker_is_taken_over(
    cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver
) -> None:
    seats = tenant_for(cfg, receiver)
    enqueue(cfg, seats, "d-orphan")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    es.update(index=IndexNames(cfg.index_prefix).outbox, id="d-orphan",
              doc={"status": "delivering", "claimed_by": "crashed-worker", "claimed_until": past, "attempts": 1})

    deliver_until(cfg, status_is(es, cfg, "d-orphan", "delivered"))

    assert [r.attempt for r in receiver.requests_for("d-orphan")] == [2]


def test_a_live_claim_is_left_alone(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)
    enqueue(cfg, seats, "d-claimed")
    enqueue(cfg, seats, "d-free")
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    es.update(index=IndexNames(cfg.index_prefix).outbox, id="d-claimed",
              doc={"status": "delivering", "claimed_by": "busy-worker", "claimed_until": later, "attempts": 1})

    deliver_until(cfg, status_is(es, cfg, "d-free", "delivered"))

    assert receiver.delivered() == {"d-free": 1}
    assert entry(es, cfg, "d-claimed")["claimed_by"] == "busy-worker"


def test_two_workers_never_send_the_same_delivery(cfg: Settings, es: Elasticsearch) -> None:
    # A generous timeout: a send that times out after the receiver answered would rightly be sent again.
    cfg = cfg.model_copy(update={"delivery_timeout": 10.0})
    receiver = WebhookReceiver(delay_seconds=0.01).start()  # a little latency so the workers overlap
    try:
        seats = tenant_for(cfg, receiver)
        ids = [f"d-many-{n:02d}" for n in range(36)]

        async def fill(es_async: Any, names: IndexNames) -> None:
            for delivery_id in ids:
                await outbox.enqueue(es=es_async, names=names, tenant_id=seats.tenant.tenant_id, target="crm",
                                       event="prospect.saved", payload={"n": delivery_id}, delivery_id=delivery_id)

        run_async(cfg, fill)
        start = threading.Barrier(2)
        rounds: dict[str, list[worker.DeliveryRound]] = {}

        def worker(name: str) -> None:
            start.wait()
            rounds[name] = deliver_until(cfg, lambda: len(receiver.delivered()) == len(ids), worker_id=name)

        threads = [threading.Thread(target=worker, args=(name,)) for name in ("worker-a", "worker-b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert set(rounds) == {"worker-a", "worker-b"}, "a worker failed; see its assertion above"

        assert receiver.delivered() == {delivery_id: 1 for delivery_id in ids}
        assert len(receiver.received) == len(ids)
        assert sum(r.delivered for name in rounds for r in rounds[name]) == len(ids)
        for delivery_id in ids:
            assert entry(es, cfg, delivery_id)["status"] == "delivered"
    finally:
        receiver.stop()


# -- the worker loop ----------------------------------------------------------------------------------------


def test_background_worker_delivers_then_stops(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver) -> None:
    seats = tenant_for(cfg, receiver)

    async def run() -> asyncio.Task[None]:
        es_async = make_async_client(cfg)
        names = IndexNames(cfg.index_prefix)
        try:
            async with worker.background_worker(es=es_async, names=names, settings=cfg) as task:
                for n in range(3):
                    await outbox.enqueue(es=es_async, names=names, tenant_id=seats.tenant.tenant_id, target="crm",
                                           event="prospect.saved", payload={}, delivery_id=f"d-bg-{n}")
                deadline = time.monotonic() + 20
                while len(receiver.delivered()) < 3:
                    assert time.monotonic() < deadline and not task.done()
                    await asyncio.sleep(0.02)
            return task
        finally:
            await es_async.close()

    task = asyncio.run(run())
    assert task.done() and not task.cancelled() and task.exception() is None
    assert receiver.delivered() == {"d-bg-0": 1, "d-bg-1": 1, "d-bg-2": 1}


def test_worker_keeps_going_while_elasticsearch_is_unreachable(
    cfg: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = cfg.model_copy(update={"es_url": f"http://127.0.0.1:{closed_port}", "es_max_retries": 0})
    caplog.set_level(logging.WARNING, logger="recmatch.delivery")

    def failed_rounds() -> int:
        return sum("delivery round failed" in record.getMessage() for record in caplog.records)

    async def run() -> None:
        es_async, stop = make_async_client(down), asyncio.Event()
        task = asyncio.create_task(worker.run_worker(es=es_async, names=IndexNames(down.index_prefix),
                                                       settings=down, stop=stop, worker_id="w-down"))
        deadline = time.monotonic() + 20
        while failed_rounds() < 3:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.02)
        stop.set()
        await task  # returns normally: the errors were logged, not raised
        await es_async.close()

    asyncio.run(run())
    assert "unreachable" in next(r.getMessage() for r in caplog.records if "delivery round failed" in r.getMessage())


def test_deliver_command_once_prints_the_counts(cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver,
                                                tmp_path: Any) -> None:
    seats = tenant_for(cfg, receiver)
    enqueue(cfg, seats, "d-cli-1")
    enqueue(cfg, seats, "d-cli-2", event="inmail.sent", target="messaging")
    env = {**os.environ, "RECMATCH_ES_URL": cfg.es_url, "RECMATCH_INDEX_PREFIX": cfg.index_prefix}

    done = subprocess.run([sys.executable, "-m", "recmatch", "deliver", "--once"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert "2 due: 2 delivered, 0 to retry, 0 dead" in done.stderr
    assert receiver.delivered() == {"d-cli-1": 1, "d-cli-2": 1}


# -- admin endpoints ----------------------------------------------------------------------------------------


def test_dead_delivery_is_listed_for_admins_and_a_retry_delivers_it(
    cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver, admin_api: TestClient
) -> None:
    seats = tenant_for(cfg, receiver)
    other = make_tenant(cfg)
    receiver.fail_always()
    enqueue(cfg, seats, "d-dead")
    enqueue(cfg, other, "d-other-tenant", payload={})  # the other tenant has no URL: dead at once

    deliver_until(cfg, lambda: all(entry(es, cfg, d)["status"] == "dead" for d in ("d-dead", "d-other-tenant")))
    assert [r.answered for r in receiver.requests_for("d-dead")] == [500, 500, 500]
    es.indices.refresh(index=IndexNames(cfg.index_prefix).outbox)

    listed = admin_api.get("/v1/admin/deliveries", params={"status": "dead"}, headers=seats.auth(seats.admin))
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 1
    [dead] = listed.json()["deliveries"]
    assert dead["delivery_id"] == "d-dead" and dead["status"] == "dead" and dead["attempts"] == 3
    assert dead["event"] == "prospect.saved" and dead["created_at"] and dead["dead_at"]
    assert "answered 500" in dead["last_error"] and "gave up after 3 tries" in dead["last_error"]
    assert admin_api.get("/v1/admin/deliveries", params={"status": "pending"},
                         headers=seats.auth(seats.admin)).json() == {"total": 0, "deliveries": []}

    # Another tenant's admin neither sees nor retries it; a recruiter may not look at all.
    theirs = admin_api.get("/v1/admin/deliveries", headers=other.auth(other.admin)).json()
    assert [d["delivery_id"] for d in theirs["deliveries"]] == ["d-other-tenant"]
    assert admin_api.post("/v1/admin/deliveries/d-dead/retry", headers=other.auth(other.admin)).status_code == 404
    assert admin_api.post("/v1/admin/deliveries/d-unknown/retry",
                          headers=seats.auth(seats.admin)).json()["type"] == "NotFound"
    for path in ("/v1/admin/deliveries", "/v1/admin/deliveries/d-dead/retry"):
        call = admin_api.get if path.endswith("deliveries") else admin_api.post
        refused = call(path, headers=seats.auth(seats.recruiter))
        assert (refused.status_code, refused.json()["type"]) == (403, "NotPermitted")
        assert call(path).status_code == 401

    receiver.succeed_from_now()
    retried = admin_api.post("/v1/admin/deliveries/d-dead/retry", headers=seats.auth(seats.admin))
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    again = admin_api.post("/v1/admin/deliveries/d-dead/retry", headers=seats.auth(seats.admin))
    assert (again.status_code, again.json()["type"]) == (409, "Conflict")
    assert "only dead deliveries" in again.json()["detail"]
    assert [d["status"] for d in admin_api.get("/v1/admin/deliveries", headers=seats.auth(seats.admin))
            .json()["deliveries"]] == ["pending"]

    deliver_until(cfg, status_is(es, cfg, "d-dead", "delivered"))
    assert [(r.attempt, r.answered) for r in receiver.requests_for("d-dead")][-1] == (1, 200)
    assert receiver.delivered() == {"d-dead": 1}


def test_deliveries_are_listed_newest_first_with_a_limit(
    cfg: Settings, es: Elasticsearch, receiver: WebhookReceiver, admin_api: TestClient
) -> None:
    seats = tenant_for(cfg, receiver)
    for n in range(4):
        enqueue(cfg, seats, f"d-order-{n}")
        time.sleep(0.002)  # distinct created_at (millisecond resolution)
    es.indices.refresh(index=IndexNames(cfg.index_prefix).outbox)

    listed = admin_api.get("/v1/admin/deliveries", params={"limit": 3}, headers=seats.auth(seats.admin)).json()

    assert listed["total"] == 4
    assert [d["delivery_id"] for d in listed["deliveries"]] == ["d-order-3", "d-order-2", "d-order-1"]
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in listed["deliveries"])
    bad = admin_api.get("/v1/admin/deliveries", params={"status": "lost"}, headers=seats.auth(seats.admin))
    assert (bad.status_code, bad.json()["type"]) == (422, "InvalidInput")
