"""Hostile input against the real app and a real Elasticsearch: schemathesis, other tenants' keys, widget tokens of
other pipelines, malformed credentials, and the same request many times at once. Nothing may answer 5xx, nothing
may show another tenant's data.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from recmatch.api.app import create_app
from recmatch.core.config import Settings
from tests.integration.support import Seats, make_tenant

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS_SECONDS = 60  # the run's time budget (CI); scripts/schemathesis_run.py takes a bigger one by hand
SCHEMATHESIS_EXAMPLES = 10
# Responses are checked against the documented schema too. Until the 422 answers are documented as Problem (see
# docs/robustness.md), a mismatch is tolerated only for 422s that carry our {"type", "detail"} shape.
CONFORMANCE_STRICT = True


# -- schemathesis -----------------------------------------------------------------------------------------------------


def test_schemathesis_finds_no_server_errors(settings: Settings, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECMATCH_")}
    env["RECMATCH_ES_URL"] = settings.es_url
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "schemathesis_run.py"), "--index-prefix", f"{settings.index_prefix}-st",
         "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--max-time", str(SCHEMATHESIS_SECONDS),
         "--json", str(summary_path), "--keep", str(tmp_path / "run")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=SCHEMATHESIS_SECONDS + 240,
    )
    assert summary_path.is_file(), f"no summary (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads(summary_path.read_text())
    print(f"\nschemathesis: {summary['cases_generated']} cases, {summary['requests']} requests over "
          f"{summary['operations']} operations in {summary['seconds']} s; statuses {summary['statuses']}; "
          f"failed checks {summary['failed_checks']}")
    assert summary["operations"] >= 15 and summary["cases_generated"] >= 200, summary
    server_error = summary["failure_samples"].get("not_a_server_error")
    assert summary["server_errors"] == 0, server_error
    assert "not_a_server_error" not in summary["failed_checks"], server_error
    mismatches = summary["conformance_failures"]
    if CONFORMANCE_STRICT:
        assert not mismatches, mismatches
    else:
        assert all(failure["status"] == 422 and failure["problem_shape"] for failure in mismatches), mismatches


# -- other tenants, other pipelines -----------------------------------------------------------------------------------

MARKER = "Zyxwvutsrq"  # a skill only tenant A's pipeline has: it must never appear in an answer to anyone else
PIPELINE_A = {"title": "Software Engineer", "locations": ["San Francisco Bay Area", "Remote"],
              "skills": ["Python", MARKER], "remote_ok": True, "owner_email": "rita@example.com"}


@dataclass
class TenantA:
    seats: Seats
    delivery_id: str
    candidate_id: str
    widget_token: str
    pipeline_view: dict[str, Any]
    learned: dict[str, Any]

    def secrets(self) -> list[str]:
        return [MARKER, self.seats.tenant.tenant_id, self.delivery_id, self.widget_token]


@pytest.fixture(scope="module")
def tenant_a(app_client: TestClient, api_settings: Settings) -> TenantA:
    seats = make_tenant(api_settings)
    auth = seats.auth(seats.recruiter)
    assert app_client.put("/v1/pipelines/p-a-secret", json=PIPELINE_A, headers=auth).status_code == 201
    assert app_client.put("/v1/pipelines/p-a-other", json=PIPELINE_A, headers=auth).status_code == 201
    listed = app_client.get("/v1/pipelines/p-a-secret/matches", headers=auth).json()
    candidate_id = listed["candidates"][0]["candidate_id"]
    saved = app_client.post(f"/v1/pipelines/p-a-secret/candidates/{candidate_id}/save", headers=auth)
    assert saved.status_code == 200, saved.text
    token = app_client.post("/v1/pipelines/p-a-secret/widget-token", headers=auth).json()["token"]
    return TenantA(seats=seats, delivery_id=saved.json()["delivery_id"], candidate_id=candidate_id,
                   widget_token=token, pipeline_view=app_client.get("/v1/pipelines/p-a-secret", headers=auth).json(),
                   learned=app_client.get("/v1/pipelines/p-a-secret/learned", headers=auth).json())


@pytest.fixture
def tenant_b(app_client: TestClient, api_settings: Settings) -> Seats:
    """Another tenant with valid keys of every license (fresh, so its own pipelines never meet another test's)."""
    return make_tenant(api_settings)


def _routes(pipeline: str, candidate: str, delivery: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route with a path parameter, aimed at the given ids (those that only read or act)."""
    acts = f"/v1/pipelines/{pipeline}/candidates/{candidate}"
    return [
        ("GET", f"/v1/pipelines/{pipeline}", None),
        ("GET", f"/v1/pipelines/{pipeline}/matches", None),
        ("GET", f"/v1/pipelines/{pipeline}/matches?explain=true", None),
        ("POST", f"{acts}/save", None),
        ("POST", f"{acts}/inmail", {"subject": "Hello", "body": "A role for you"}),
        ("POST", f"{acts}/export", None),
        ("POST", f"{acts}/dismiss", {"reason": "skills"}),
        ("GET", f"/v1/pipelines/{pipeline}/learned", None),
        ("DELETE", f"/v1/pipelines/{pipeline}/learned", None),
        ("POST", f"/v1/pipelines/{pipeline}/widget-token", None),
        ("POST", f"/v1/admin/deliveries/{delivery}/retry", None),
    ]


def _assert_refused(response: httpx.Response, allowed: tuple[int, ...], secrets: list[str], what: str) -> None:
    """Refused with the one error shape, and nothing of A's in the answer beyond what the caller itself sent."""
    assert response.status_code in allowed, (what, response.status_code, response.text[:300])
    assert set(response.json()) == {"type", "detail"}, (what, response.text[:300])
    sent = str(response.request.url) + response.request.content.decode(errors="replace")
    leaked = [secret for secret in secrets if secret in response.text and secret not in sent]
    assert not leaked, (what, leaked, response.text[:300])


def test_another_tenants_keys_are_refused_on_every_route(app_client: TestClient, tenant_a: TenantA,
                                                         tenant_b: Seats) -> None:
    for key in (tenant_b.recruiter, tenant_b.admin):
        for method, path, body in _routes("p-a-secret", tenant_a.candidate_id, tenant_a.delivery_id):
            # A recruiter may not use admin routes at all (403); otherwise A's ids do not exist for B (404).
            response = app_client.request(method, path, json=body, headers=tenant_b.auth(key))
            _assert_refused(response, (403, 404), tenant_a.secrets(), f"{method} {path}")
    # B's admin lists B's deliveries only.
    listed = app_client.get("/v1/admin/deliveries", headers=tenant_b.auth(tenant_b.admin))
    assert listed.status_code == 200 and tenant_a.delivery_id not in listed.text
    # Nothing of A's changed: the refused DELETE /learned and actions left A's pipeline as it was.
    auth = tenant_a.seats.auth(tenant_a.seats.recruiter)
    assert app_client.get("/v1/pipelines/p-a-secret", headers=auth).json() == tenant_a.pipeline_view
    assert app_client.get("/v1/pipelines/p-a-secret/learned", headers=auth).json() == tenant_a.learned


def test_the_same_crm_pipeline_id_in_another_tenant_is_that_tenants_own(app_client: TestClient, tenant_a: TenantA,
                                                                      tenant_b: Seats) -> None:
    b = tenant_b.auth(tenant_b.recruiter)
    mine = {"title": "Registered Nurse", "locations": ["Boston, MA"], "skills": ["Epic"]}
    for response in (app_client.put("/v1/pipelines/p-a-secret", json=mine, headers=b),
                     app_client.post("/v1/pipelines:batch", headers=b,
                                     json={"pipelines": [{**mine, "crm_pipeline_id": "p-a-other"}]})):
        assert response.status_code in (200, 201), response.text
        assert not [secret for secret in tenant_a.secrets() if secret in response.text], response.text
    seen_by_b = app_client.get("/v1/pipelines/p-a-secret", headers=b).json()
    assert seen_by_b["title"] == "Registered Nurse" and MARKER not in json.dumps(seen_by_b)
    matches_b = app_client.get("/v1/pipelines/p-a-secret/matches?explain=true", headers=b)
    assert matches_b.status_code == 200 and MARKER not in matches_b.text
    a = tenant_a.seats.auth(tenant_a.seats.recruiter)
    assert app_client.get("/v1/pipelines/p-a-secret", headers=a).json() == tenant_a.pipeline_view
    assert app_client.get("/v1/pipelines/p-a-other", headers=a).json()["skills"] == PIPELINE_A["skills"]


def test_a_widget_token_reaches_its_own_pipeline_only(app_client: TestClient, tenant_a: TenantA,
                                                     tenant_b: Seats) -> None:
    widget = {"Authorization": f"Bearer {tenant_a.widget_token}"}
    assert app_client.get("/v1/pipelines/p-a-secret/matches", headers=widget).status_code == 200
    # Another pipeline of the same tenant and seat: refused on every route.
    for method, path, body in _routes("p-a-other", tenant_a.candidate_id, tenant_a.delivery_id):
        response = app_client.request(method, path, json=body, headers=widget)
        _assert_refused(response, (403,), [MARKER], f"{method} {path}")
    # Calls that need a seat key refuse any widget token, even for its own pipeline.
    for method, path, body in (("PUT", "/v1/pipelines/p-a-secret", PIPELINE_A), ("GET", "/v1/integration", None),
                               ("POST", "/v1/pipelines:batch", {"pipelines": []}),
                               ("PUT", f"/v1/admin/candidates/{tenant_a.candidate_id}", None),
                               ("DELETE", f"/v1/admin/candidates/{tenant_a.candidate_id}", None),
                               ("GET", "/v1/admin/deliveries", None)):
        response = app_client.request(method, path, json=body, headers=widget)
        _assert_refused(response, (403,), [], f"{method} {path}")
    # Another tenant's widget token, for a pipeline of theirs with the same id, sees their pipeline, not A's.
    b = tenant_b.auth(tenant_b.recruiter)
    app_client.put("/v1/pipelines/p-a-secret", json={"title": "Registered Nurse"}, headers=b)
    theirs = app_client.post("/v1/pipelines/p-a-secret/widget-token", headers=b).json()["token"]
    seen = app_client.get("/v1/pipelines/p-a-secret", headers={"Authorization": f"Bearer {theirs}"})
    assert seen.status_code == 200 and MARKER not in seen.text and seen.json()["title"] == "Registered Nurse"
    other = app_client.get("/v1/pipelines/p-a-other/matches", headers={"Authorization": f"Bearer {theirs}"})
    _assert_refused(other, (403,), tenant_a.secrets(), "B's widget token on another pipeline")
    # The widget page with a token of another pipeline renders the invalid state, with nothing of the token's tenant.
    page = app_client.get(f"/widget/p-a-other?token={tenant_a.widget_token}")
    assert page.status_code == 401 and "https://crm.example.com" not in page.headers["Content-Security-Policy"]


def test_admin_candidate_routes_refuse_recruiters_of_any_tenant(app_client: TestClient, tenant_a: TenantA,
                                                               tenant_b: Seats) -> None:
    candidate = {"candidate_id": tenant_a.candidate_id, "name": "Mallory", "title": "Registered Nurse"}
    for key in (tenant_b.recruiter, tenant_b.collaborator, tenant_a.seats.recruiter):
        for method, body in (("PUT", candidate), ("DELETE", None)):
            response = app_client.request(method, f"/v1/admin/candidates/{tenant_a.candidate_id}", json=body,
                                          headers=tenant_b.auth(key))
            _assert_refused(response, (403,), tenant_a.secrets(), f"{method} admin candidate")


# -- malformed credentials and pages outside the OpenAPI --------------------------------------------------------------


@pytest.mark.parametrize("authorization", [
    "Bearer", "Bearer ", "Bearer rm_", "Bearer rm__", "Bearer rm_x_", "Bearer rm_UPPER_secret", "Bearer rm_a_b_c",
    "Bearer rm_" + "a" * 5000 + "_x", "Basic dXNlcjpwYXNz", "bearer rm_t-1_x", "Bearer eyJhbGciOiJub25lIn0.e30.",
    "Bearer a.b.c", "Bearer ../../etc/passwd", 'Bearer {"$gt": ""}', "Bearer rm_t-1_x\tother",
])
def test_malformed_credentials_get_401_or_403(app_client: TestClient, authorization: str) -> None:
    for method, path in (("GET", "/v1/integration"), ("GET", "/v1/pipelines/p-1/matches"),
                         ("POST", "/v1/pipelines/p-1/candidates/c-1/save")):
        response = app_client.request(method, path, headers={"Authorization": authorization})
        assert response.status_code in (401, 403), (authorization[:40], path, response.status_code, response.text)
        assert set(response.json()) == {"type", "detail"}


@pytest.mark.parametrize("token", ["x", "a.b.c", "eyJhbGciOiJub25lIn0.eyJhdWQiOiJyZWNtYXRjaDpjb250YWN0LXNoYXJlIn0.",
                                   "%00", "A" * 4000, "<script>alert(1)</script>"])
def test_share_and_widget_pages_refuse_garbage_tokens(app_client: TestClient, token: str) -> None:
    for response in (app_client.get(f"/share/{token}"),
                     app_client.post(f"/share/{token}", data={"email": "a@example.com"}),
                     app_client.get("/widget/p-1", params={"token": token})):
        assert 400 <= response.status_code < 500, (token[:40], response.status_code, response.text[:200])
        assert "<script>alert(1)</script>" not in response.text


# -- the same request many times at once ------------------------------------------------------------------------------


@pytest.fixture
def concurrent_api(api_settings: Settings, candidate_pool: Path) -> Iterator[tuple[Any, Seats]]:
    """The real app in this test's event loop (a CRM retrying in parallel reaches one process many times at once)."""
    seats = make_tenant(api_settings)
    yield create_app(api_settings), seats


def test_concurrent_duplicate_requests_never_answer_500(concurrent_api: tuple[Any, Seats]) -> None:
    app, seats = concurrent_api
    pipeline = {"title": "Software Engineer", "locations": ["Austin, TX"], "skills": ["Python"]}
    outcomes: dict[str, Counter[int]] = {}
    server_errors: dict[str, set[str]] = {}

    async def burst(client: httpx.AsyncClient, name: str, method: str, paths: list[str], **kwargs: Any) -> None:
        responses = await asyncio.gather(*(client.request(method, path, **kwargs) for path in paths))
        outcomes[name] = Counter(response.status_code for response in responses)
        failed = {response.text[:200] for response in responses if response.status_code >= 500}
        if failed:
            server_errors[name] = failed

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://recmatch",
                                         headers=seats.auth(seats.recruiter), timeout=60) as client:
                await burst(client, "PUT one new pipeline x6", "PUT", ["/v1/pipelines/p-burst"] * 6, json=pipeline)
                await client.put("/v1/pipelines/p-burst2", json=pipeline)
                await burst(client, "first list of a pipeline x6", "GET", ["/v1/pipelines/p-burst2/matches"] * 6)
                listed = (await client.get("/v1/pipelines/p-burst2/matches", params={"page_size": 30})).json()
                ids = [candidate["candidate_id"] for candidate in listed["candidates"]]
                acts = "/v1/pipelines/p-burst2/candidates"
                await burst(client, "save one candidate x6", "POST", [f"{acts}/{ids[0]}/save"] * 6)
                await burst(client, "save six candidates", "POST", [f"{acts}/{cid}/save" for cid in ids[1:7]])
                await burst(client, "one Idempotency-Key x6", "POST", [f"{acts}/{ids[7]}/save"] * 6,
                            headers={"Idempotency-Key": "burst-1"})
                await burst(client, "export six candidates", "POST", [f"{acts}/{cid}/export" for cid in ids[8:14]])

    asyncio.run(scenario())
    print(f"\nconcurrent bursts: { {name: dict(counts) for name, counts in outcomes.items()} }")
    assert not server_errors, server_errors
