"""Widget tokens: minted by a seat, scoped to one pipeline, expiring; the widget page's framing policy."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from recmatch.accounts.service import License, Seat
from recmatch.accounts.tokens import mint_widget_token
from tests.integration.support import Seats

PIPELINE = {"title": "Data Scientist", "locations": ["Seattle, WA"], "skills": ["Python"], "remote_ok": True}


def mint(client: TestClient, seats: Seats, crm_id: str) -> dict:
    assert client.put(f"/v1/pipelines/{crm_id}", json=PIPELINE, headers=seats.auth(seats.recruiter)).status_code in (
        200, 201)
    response = client.post(f"/v1/pipelines/{crm_id}/widget-token", headers=seats.auth(seats.recruiter))
    assert response.status_code == 200, response.text
    return response.json()


def test_widget_token_reaches_its_pipeline_and_nothing_else(app_client: TestClient, seats: Seats):
    minted = mint(app_client, seats, "p-widget")
    assert minted["widget_url"] == f"http://testserver/widget/p-widget?token={minted['token']}"
    widget = {"Authorization": f"Bearer {minted['token']}"}
    assert app_client.get("/v1/pipelines/p-widget/matches", headers=widget).status_code == 200
    assert app_client.get("/v1/pipelines/p-widget/learned", headers=widget).status_code == 200
    mint(app_client, seats, "p-other")
    other = app_client.get("/v1/pipelines/p-other/matches", headers=widget)
    assert other.status_code == 403 and "p-widget" in other.json()["detail"]
    for method, path in (("put", "/v1/pipelines/p-widget"), ("get", "/v1/integration"),
                         ("post", "/v1/pipelines/p-widget/widget-token"),
                         ("delete", "/v1/admin/candidates/c-000001")):
        response = app_client.request(method, path, headers=widget, json=PIPELINE if method == "put" else None)
        assert response.status_code == 403, (method, path, response.text)


def test_expired_or_forged_widget_token_gets_401(app_client: TestClient, seats: Seats):
    mint(app_client, seats, "p-expired")
    secret = app_client.app.state.secret
    seat = Seat(seat_id="s-x", tenant_id=seats.tenant.tenant_id, email="rita@example.com", license=License.recruiter)
    expired, _ = mint_widget_token(secret=secret, seat=seat, crm_pipeline_id="p-expired", ttl=timedelta(seconds=-5))
    response = app_client.get("/v1/pipelines/p-expired/matches", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["type"] == "TokenExpired"
    forged, _ = mint_widget_token(secret="not-the-secret-" * 4, seat=seat, crm_pipeline_id="p-expired",
                                  ttl=timedelta(minutes=5))
    response = app_client.get("/v1/pipelines/p-expired/matches", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.json()["type"] == "NotAuthenticated"


def test_hiring_collaborator_cannot_mint_a_widget_token(app_client: TestClient, seats: Seats):
    response = app_client.post("/v1/pipelines/p-widget/widget-token", headers=seats.auth(seats.collaborator))
    assert response.status_code == 403 and response.json()["type"] == "LicenseNotEligible"


def test_widget_page_may_be_framed_by_the_tenants_crm_only(app_client: TestClient, seats: Seats):
    minted = mint(app_client, seats, "p-frame")
    page = app_client.get(minted["widget_url"])
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors https://crm.example.com" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert 'content="valid"' in page.text and minted["token"] in page.text
    invalid = app_client.get("/widget/p-frame?token=garbage")
    assert invalid.status_code == 401 and "frame-ancestors 'none'" in invalid.headers["Content-Security-Policy"]
    assert 'content="invalid"' in invalid.text and "garbage" not in invalid.text


def test_sandbox_is_off_unless_enabled(app_client: TestClient):
    assert app_client.get("/sandbox").status_code == 404
    assert app_client.post("/sandbox/api/pipelines/x", json=PIPELINE).status_code == 404
