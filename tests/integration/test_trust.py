"""Issue 13's attacks, performed as a hostile tenant would, against the real node (docs/robustness.md, "Trust").

Each test names the finding it replays; on the main before the fix each one succeeded."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from recmatch.accounts import service as accounts
from recmatch.accounts.service import KeyCache, License
from recmatch.api.app import create_app
from recmatch.core.config import Settings
from recmatch.core.errors import InvalidInput
from recmatch.core.es import IndexNames, ensure_indices, make_async_client
from recmatch.webhooks import outbox, worker
from tests.integration.support import Seats, make_tenant, run_async
from tests.integration.webhook_receiver import WebhookReceiver

PIPELINE = {"title": "Registered Nurse", "locations": ["Boston, MA"], "skills": ["Epic"]}


def strict(settings: Settings) -> Settings:
    """A production deployment: https only, no internal address allowed."""
    return settings.model_copy(update={"webhook_allow_http": False, "webhook_allowed_networks": []})


def a_listed_candidate(app_client: TestClient, seats: Seats, pipeline_id: str) -> str:
    app_client.put(f"/v1/pipelines/{pipeline_id}", json=PIPELINE, headers=seats.auth(seats.recruiter))
    listing = app_client.get(f"/v1/pipelines/{pipeline_id}/matches", headers=seats.auth(seats.recruiter)).json()
    return listing["candidates"][-1]["candidate_id"]


# -- 1. the shared pool -------------------------------------------------------------------------------------


def test_a_tenant_admin_cannot_write_or_erase_the_shared_pool(app_client: TestClient, seats: Seats,
                                                              other_tenant: Seats, es: Elasticsearch,
                                                              api_settings: Settings):
    victim = a_listed_candidate(app_client, seats, "p-trust-pool")
    injected = {"candidate_id": victim, "name": "Injected By Tenant B", "title": "Registered Nurse",
                "allow_export": True, "profile_url": "https://phish.example/login"}
    b_admin = other_tenant.auth(other_tenant.admin)
    put = app_client.put(f"/v1/admin/candidates/{victim}", json=injected, headers=b_admin)
    assert put.status_code == 403 and put.json()["type"] == "NotPermitted" and "operator" in put.json()["detail"]
    for candidate_id in (victim, "c-not-yet-in-the-pool"):
        assert app_client.delete(f"/v1/admin/candidates/{candidate_id}", headers=b_admin).status_code == 403
    stored = es.get(index=IndexNames(api_settings.index_prefix).candidates, id=victim)["_source"]
    assert stored["name"] != "Injected By Tenant B"
    assert not es.exists(index=IndexNames(api_settings.index_prefix).erasures, id="c-not-yet-in-the-pool")
    listing = app_client.get("/v1/pipelines/p-trust-pool/matches", headers=seats.auth(seats.recruiter)).json()
    assert "Injected By Tenant B" not in str(listing)


def test_an_upsert_never_undoes_an_erasure_unless_an_operator_lifts_it(app_client: TestClient, operator_key: str,
                                                                       es: Elasticsearch, api_settings: Settings,
                                                                       caplog: pytest.LogCaptureFixture):
    candidate = {"candidate_id": "c-trust-erased", "name": "Erin Erased", "title": "Registered Nurse"}
    operator = Seats.auth(operator_key)
    assert app_client.put("/v1/admin/candidates/c-trust-erased", json=candidate, headers=operator).status_code == 200
    assert app_client.delete("/v1/admin/candidates/c-trust-erased", headers=operator).status_code == 204
    again = app_client.put("/v1/admin/candidates/c-trust-erased", json=candidate, headers=operator)
    assert again.status_code == 409 and again.json()["type"] == "CandidateErased"
    assert "lift_erasure" in again.json()["detail"]
    names = IndexNames(api_settings.index_prefix)
    assert not es.exists(index=names.candidates, id="c-trust-erased")
    with caplog.at_level(logging.WARNING, logger="recmatch.indexing"):
        lifted = app_client.put("/v1/admin/candidates/c-trust-erased?lift_erasure=true", json=candidate,
                                headers=operator)
    assert lifted.status_code == 200
    assert any("lifted the erasure of candidate c-trust-erased" in record.getMessage() for record in caplog.records)
    assert es.exists(index=names.candidates, id="c-trust-erased")


# -- 2. webhooks that cannot reach inside ------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",   # cloud metadata (link-local)
    "http://10.0.0.5/hook",                       # private
    "http://[::1]:9200/evil/_doc",                # loopback, IPv6
    "http://[::ffff:10.1.2.3]/x",                 # private, IPv4-mapped
    "http://user:pass@crm.example.com/hook",      # credentials in the URL
    "ftp://crm.example.com/hook",
])
def test_a_tenant_admin_cannot_point_webhooks_inside(app_client: TestClient, seats: Seats, url: str):
    refused = app_client.patch("/v1/admin/integration", json={"webhook_url": url}, headers=seats.auth(seats.admin))
    assert refused.status_code == 422 and refused.json()["detail"].startswith("webhook_url")
    assert app_client.get("/v1/integration", headers=seats.auth(seats.admin)).status_code == 200


def test_production_settings_refuse_http_and_loopback_when_set(api_settings: Settings):
    production = strict(api_settings)
    for url, why in (("http://crm.example.com/hook", "https"), ("https://127.0.0.1:9200/evil/_doc", "loopback"),
                     ("https://localhost:8443/admin", "loopback")):
        with pytest.raises(InvalidInput, match=why):
            run_async(production, lambda es, names, url=url: accounts.create_tenant(
                es=es, names=names, name="Mallory", crm_provider="demo-crm", webhook_url=url, settings=production))
    assert accounts.check_webhook_url("webhook_url", "https://crm.example.com/hook", production)


@contextmanager
def _receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


def _deliver_once(settings: Settings) -> worker.DeliveryRound:
    async def work() -> worker.DeliveryRound:
        es = make_async_client(settings)
        try:
            async with worker.make_http_client() as http:
                return await worker.deliver_due(es=es, names=IndexNames(settings.index_prefix), settings=settings,
                                                  worker_id="trust-test", http=http)
        finally:
            await es.close()

    return asyncio.run(work())


def _entry(settings: Settings, delivery_id: str) -> dict[str, Any]:
    return run_async(settings, lambda es, names: es.get(index=names.index("outbox"), id=delivery_id))["_source"]


def test_a_stored_internal_webhook_is_refused_at_delivery_time(settings: Settings, es: Elasticsearch):
    """A URL stored before the checks (or a name that now resolves inside) is checked again when sending."""
    cfg = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-trust-ssrf", "delivery_in_api": False})
    ensure_indices(es, IndexNames(cfg.index_prefix))
    with _receiver() as internal:
        seats = make_tenant(cfg, webhook_url=f"{internal.url}/admin",  # allowed by the test deployment
                            messaging_webhook_url=internal.url.replace("127.0.0.1", "localhost") + "/admin")
        internal.secret = seats.tenant.webhook_secret.get_secret_value()
        for target, delivery_id in (("crm", "d-ssrf-crm"), ("messaging", "d-ssrf-messaging")):
            run_async(cfg, lambda es_, names, t=target, d=delivery_id: outbox.enqueue(
                es=es_, names=names, tenant_id=seats.tenant.tenant_id, target=t, event="prospect.saved",
                payload={}, delivery_id=d))
        done = _deliver_once(strict(cfg).model_copy(update={"webhook_allow_http": True}))
        assert done.dead == 2 and internal.received == []
        for delivery_id in ("d-ssrf-crm", "d-ssrf-messaging"):
            entry = _entry(cfg, delivery_id)
            assert entry["status"] == "dead" and "loopback" in entry["last_error"]
    es.indices.delete(index=f"{cfg.index_prefix}-*")


def test_a_receivers_answer_never_reaches_the_tenant_or_the_logs(settings: Settings, es: Elasticsearch,
                                                                 caplog: pytest.LogCaptureFixture):
    cfg = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-trust-body", "delivery_in_api": False,
                                      "delivery_max_attempts": 1})
    ensure_indices(es, IndexNames(cfg.index_prefix))
    with _receiver() as receiver:
        seats = make_tenant(cfg, webhook_url=f"{receiver.url}/crm")
        receiver.secret = seats.tenant.webhook_secret.get_secret_value()
        receiver.fail_always()  # answers 500 with the body "receiver failed on purpose"
        run_async(cfg, lambda es_, names: outbox.enqueue(
            es=es_, names=names, tenant_id=seats.tenant.tenant_id, target="crm", event="prospect.saved", payload={},
            delivery_id="d-body"))
        with caplog.at_level(logging.DEBUG):
            assert _deliver_once(cfg).dead == 1
        entry = _entry(cfg, "d-body")
        assert entry["last_status_code"] == 500 and entry["last_error"].startswith("answered 500: the receiver failed")
        assert "on purpose" not in entry["last_error"]
        assert not [r for r in caplog.records if "on purpose" in r.getMessage()]
    es.indices.delete(index=f"{cfg.index_prefix}-*")


# -- 3. exact CRM origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://crm.example.com *", "*", "https://*.example.com",
                                    "https://crm.example.com/path", "https://crm.example.com:99999",
                                    "javascript:alert(1)", "https://crm.example.com;script-src *"])
def test_crm_origins_must_be_exact(app_client: TestClient, seats: Seats, origin: str):
    refused = app_client.patch("/v1/admin/integration", json={"crm_origins": [origin]},
                               headers=seats.auth(seats.admin))
    assert refused.status_code == 422 and refused.json()["detail"].startswith("crm_origins")
    with pytest.raises(InvalidInput):
        accounts.check_origin(origin)


def test_a_stored_wildcard_origin_never_reaches_the_widget_csp(app_client: TestClient, api_settings: Settings,
                                                               es: Elasticsearch):
    tenant = make_tenant(api_settings)
    # As an older version stored it, before origins were checked.
    es.update(index=IndexNames(api_settings.index_prefix).index("accounts"), id=f"tenant:{tenant.tenant.tenant_id}",
              doc={"crm_origins": ["https://crm.example.com *", "https://ok.example.com"]}, refresh=True)
    app_client.app.state.key_cache = KeyCache(ttl=0)
    app_client.put("/v1/pipelines/p-frame", json=PIPELINE, headers=tenant.auth(tenant.recruiter))
    minted = app_client.post("/v1/pipelines/p-frame/widget-token", headers=tenant.auth(tenant.recruiter)).json()
    page = app_client.get(minted["widget_url"])
    assert page.headers["Content-Security-Policy"].endswith("frame-ancestors https://ok.example.com")


def test_tenant_admin_sets_webhooks_and_origins_after_creation(app_client: TestClient, seats: Seats):
    changed = app_client.patch("/v1/admin/integration", headers=seats.auth(seats.admin), json={
        "webhook_url": "https://crm.example.com/hooks/recmatch", "crm_origins": ["https://CRM.example.com:8443"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["crm_origins"] == ["https://crm.example.com:8443"]
    assert app_client.patch("/v1/admin/integration", json={"crm_origins": []},
                            headers=seats.auth(seats.recruiter)).status_code == 403
    app_client.patch("/v1/admin/integration", json={"crm_origins": ["https://crm.example.com"], "webhook_url": ""},
                     headers=seats.auth(seats.admin))


# -- 4. pipeline takeover ----------------------------------------------------------------------------------


def test_a_recruiter_cannot_take_over_a_colleagues_pipeline(app_client: TestClient, seats: Seats):
    rita, otto = seats.auth(seats.recruiter), seats.auth(seats.other_recruiter)
    assert app_client.put("/v1/pipelines/p-takeover", json=PIPELINE, headers=rita).status_code in (200, 201)
    takeover = app_client.put("/v1/pipelines/p-takeover", headers=otto,
                              json={**PIPELINE, "access_restricted": True, "owner_email": "otto@example.com"})
    assert takeover.status_code == 403 and takeover.json()["type"] == "NotPermitted"
    grab = app_client.put("/v1/pipelines/p-takeover", headers=otto,
                          json={**PIPELINE, "owner_email": "otto@example.com"})
    assert grab.status_code == 403
    assert app_client.get("/v1/pipelines/p-takeover", headers=rita).json()["owner_email"] == "rita@example.com"
    # The owner restricts it: to a colleague it now does not exist (no owner named).
    assert app_client.put("/v1/pipelines/p-takeover", json={**PIPELINE, "access_restricted": True},
                          headers=rita).status_code == 200
    hidden = app_client.get("/v1/pipelines/p-takeover/matches", headers=otto)
    assert hidden.status_code == 404 and "rita" not in hidden.text
    assert hidden.json()["detail"] == app_client.get("/v1/pipelines/p-nowhere", headers=otto).json()["detail"].replace(
        "p-nowhere", "p-takeover")
    # An admin may hand it over.
    assert app_client.put("/v1/pipelines/p-takeover", json={**PIPELINE, "owner_email": "otto@example.com",
                                                        "access_restricted": True},
                          headers=seats.auth(seats.admin)).status_code == 200
    assert app_client.get("/v1/pipelines/p-takeover", headers=otto).status_code == 200


# -- 6. request bodies -------------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_before_parsing_and_auth(app_client: TestClient, api_settings: Settings):
    limit = api_settings.max_body_bytes
    huge = b'{"title": "' + b"x" * (limit + 1) + b'"}'
    refused = app_client.put("/v1/pipelines/p-huge", content=huge, headers={"Content-Type": "application/json"})
    assert refused.status_code == 413 and refused.json() == {
        "type": "BodyTooLarge", "detail": f"the request body is larger than the limit of {limit} bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"title": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    streamed = app_client.put("/v1/pipelines/p-huge", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and str(limit) in streamed.json()["detail"]
    # A body within the limit still reaches authentication.
    assert app_client.put("/v1/pipelines/p-huge", json=PIPELINE).status_code == 401


# -- 7. the lower findings ---------------------------------------------------------------------------------


def test_a_widget_token_stops_with_its_seat(app_client: TestClient, api_settings: Settings):
    tenant = make_tenant(api_settings)
    app_client.put("/v1/pipelines/p-seat", json=PIPELINE, headers=tenant.auth(tenant.recruiter))
    token = app_client.post("/v1/pipelines/p-seat/widget-token", headers=tenant.auth(tenant.recruiter)).json()["token"]
    widget = {"Authorization": f"Bearer {token}"}
    cache = app_client.app.state.key_cache
    app_client.app.state.key_cache = KeyCache(ttl=0)  # the cache's time has passed
    try:
        assert app_client.get("/v1/pipelines/p-seat/matches", headers=widget).status_code == 200
        seat_id = app_client.get("/v1/integration", headers=tenant.auth(tenant.recruiter)).json()["seat_email"]
        assert seat_id == "rita@example.com"
        rita = _seat_id(api_settings, tenant, "rita@example.com")
        run_async(api_settings, lambda es, names: accounts.change_seat(
            es=es, names=names, seat_id=rita, license=License.hiring_collaborator))
        downgraded = app_client.get("/v1/pipelines/p-seat/matches", headers=widget)
        assert downgraded.status_code == 403 and downgraded.json()["type"] == "LicenseNotEligible"
        run_async(api_settings, lambda es, names: accounts.change_seat(es=es, names=names, seat_id=rita,
                                                                       disabled=True))
        assert app_client.get("/v1/pipelines/p-seat/matches", headers=widget).status_code == 401
    finally:
        app_client.app.state.key_cache = cache


def _seat_id(settings: Settings, tenant: Seats, email: str) -> str:
    found = run_async(settings, lambda es, names: es.search(index=names.index("accounts"), query={"bool": {"filter": [
        {"term": {"kind": "seat"}}, {"term": {"tenant_id": tenant.tenant.tenant_id}}, {"term": {"email": email}}]}}))
    return found["hits"]["hits"][0]["_source"]["seat_id"]


def test_elasticsearch_errors_do_not_name_its_host(api_settings: Settings):
    dead = api_settings.model_copy(update={"es_url": "http://127.0.0.1:9", "es_max_retries": 0})
    with TestClient(create_app(dead)) as client:
        for response in (client.get("/v1/integration", headers=Seats.auth("rm_some-tenant_secret")),
                         client.get("/readyz")):
            assert response.status_code == 503
            assert "127.0.0.1" not in response.text and ":9" not in response.text, response.text


def test_secrets_are_sealed_at_rest(app_client: TestClient, seats: Seats, es: Elasticsearch, api_settings: Settings):
    accounts_index = IndexNames(api_settings.index_prefix).index("accounts")
    stored = es.get(index=accounts_index, id=f"tenant:{seats.tenant.tenant_id}")["_source"]["webhook_secret"]
    assert stored.startswith("sealed:v1:") and seats.tenant.webhook_secret.get_secret_value() not in stored
    app_client.post("/v1/pipelines/p-any/widget-token", headers=seats.auth(seats.recruiter))  # makes the secret
    server = es.get(index=accounts_index, id="server:secret")["_source"]["webhook_secret"]
    assert server.startswith("sealed:v1:") and app_client.app.state.secret not in server
    # Read back through the service, the secret is the one the tenant was given.
    read = run_async(api_settings, lambda es_, names: accounts.get_tenant(es=es_, names=names,
                                                                          tenant_id=seats.tenant.tenant_id))
    assert read.webhook_secret.get_secret_value() == seats.tenant.webhook_secret.get_secret_value()


def test_bogus_keys_cost_one_read_each_and_are_rate_limited(app_client: TestClient):
    state = app_client.app.state
    reads: list[str] = []
    original = state.es.transport.perform_request

    async def counting(method: str, target: str, **kwargs: Any) -> Any:
        if "_mget" in target:
            reads.append(target)
        return await original(method, target, **kwargs)

    # A clock that stands still: the bucket of 5 fresh lookups never refills during the test.
    cache, state.key_cache = state.key_cache, KeyCache(ttl=30, failed_per_second=5, timer=lambda: 1000.0)
    state.es.transport.perform_request = counting
    try:
        for _ in range(20):  # one bogus key, over and over: one read
            assert app_client.get("/v1/integration", headers=Seats.auth("rm_acme_bogus")).status_code == 401
        assert len(reads) == 1
        answers = [app_client.get("/v1/integration", headers=Seats.auth(f"rm_acme_guess{i}")).status_code
                   for i in range(40)]
        assert answers == [401] * 4 + [429] * 36  # the rest of the bucket, then refused without a read
        assert len(reads) == 5
    finally:
        state.es.transport.perform_request = original
        state.key_cache = cache


# -- 8. stored documents from a newer process --------------------------------------------------------------


def test_a_pipeline_with_a_field_this_process_does_not_know_still_reads(app_client: TestClient, seats: Seats,
                                                                        es: Elasticsearch, api_settings: Settings):
    app_client.put("/v1/pipelines/p-newer", json=PIPELINE, headers=seats.auth(seats.recruiter))
    index = IndexNames(api_settings.index_prefix).index("pipelines")
    # A rolling deploy: a newer process maps and writes a field this one has never heard of.
    es.indices.put_mapping(index=index, properties={"added_by_a_newer_version": {"type": "keyword"}})
    es.update(index=index, id=f"{seats.tenant.tenant_id}:p-newer", doc={"added_by_a_newer_version": "x"},
              refresh=True)
    assert app_client.get("/v1/pipelines/p-newer", headers=seats.auth(seats.recruiter)).status_code == 200
    assert app_client.get("/v1/pipelines/p-newer/matches", headers=seats.auth(seats.recruiter)).status_code == 200


# -- retention and the command line ------------------------------------------------------------------------


def _cli(settings: Settings, tmp_path: Any, *args: str, extra_env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECMATCH_ES_URL": settings.es_url, "RECMATCH_INDEX_PREFIX": settings.index_prefix,
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "recmatch", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=180)


def test_personal_data_in_the_outbox_and_events_is_deleted_after_its_retention(settings: Settings,
                                                                               es: Elasticsearch, tmp_path: Any):
    cfg = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-trust-ret"})
    names = IndexNames(cfg.index_prefix)
    ensure_indices(es, names)
    old, recent = "2020-01-01T00:00:00+00:00", datetime.now(UTC).isoformat()
    for delivery_id, status, created in (("d-old-done", "delivered", old), ("d-old-dead", "dead", old),
                                         ("d-old-pending", "pending", old), ("d-new-done", "delivered", recent)):
        es.index(index=names.index("outbox"), id=delivery_id, document={
            "delivery_id": delivery_id, "tenant_id": "t", "target": "messaging", "event": "inmail.sent",
            "payload": {"body": "a private InMail"}, "status": status, "attempts": 1, "created_at": created})
    for event_id, at in (("e-old", old), ("e-new", recent)):
        es.index(index=names.index("events"), id=event_id, document={"event_id": event_id, "tenant_id": "t",
                                                                     "action": "save", "at": at})
    es.indices.refresh(index=f"{cfg.index_prefix}-*")
    done = _cli(cfg, tmp_path, "purge")
    assert done.returncode == 0, done.stderr
    assert "deleted 2 finished deliveries and 1 events" in done.stderr
    es.indices.refresh(index=f"{cfg.index_prefix}-*")
    left = {hit["_id"] for hit in es.search(index=names.index("outbox"), size=10)["hits"]["hits"]}
    assert left == {"d-old-pending", "d-new-done"}
    assert {hit["_id"] for hit in es.search(index=names.index("events"), size=10)["hits"]["hits"]} == {"e-new"}
    es.indices.delete(index=f"{cfg.index_prefix}-*")


def test_operators_and_tenant_endpoints_from_the_command_line(settings: Settings, es: Elasticsearch, tmp_path: Any):
    cfg = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-trust-cli"})
    made = _cli(cfg, tmp_path, "tenants", "create", "--name", "Acme", "--tenant-id", "acme-cli")
    assert made.returncode == 0, made.stderr
    production = {"RECMATCH_WEBHOOK_ALLOW_HTTP": "false", "RECMATCH_WEBHOOK_ALLOWED_NETWORKS": "[]"}
    refused = _cli(cfg, tmp_path, "tenants", "update", "--tenant-id", "acme-cli", "--crm-origin",
                   "https://crm.example.com *", extra_env=production)
    assert refused.returncode != 0 and "crm_origins" in refused.stdout + refused.stderr
    refused = _cli(cfg, tmp_path, "tenants", "update", "--tenant-id", "acme-cli", "--webhook-url",
                   "http://127.0.0.1:9200/evil/_doc", extra_env=production)
    assert refused.returncode != 0 and "https" in refused.stdout + refused.stderr
    changed = _cli(cfg, tmp_path, "tenants", "update", "--tenant-id", "acme-cli", "--webhook-url",
                   "https://crm.example.com/hooks", "--crm-origin", "https://crm.example.com", extra_env=production)
    assert changed.returncode == 0, changed.stderr
    assert "webhook_url: https://crm.example.com/hooks" in changed.stdout
    assert "crm_origins: https://crm.example.com" in changed.stdout
    operator = _cli(cfg, tmp_path, "operators", "create", "--email", "olga@example.com")
    assert operator.returncode == 0 and "operator_key: rmop_" in operator.stdout
    es.indices.delete(index=f"{cfg.index_prefix}-*")
