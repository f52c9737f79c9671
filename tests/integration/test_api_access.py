"""Who may call what: keys, licenses, the feature gate, tenant isolation, restricted pipelines, validation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recmatch.accounts import service as accounts
from recmatch.core.errors import NotAuthenticated
from tests.integration.support import Seats, make_tenant, run_async

PIPELINE = {"title": "Software Engineer", "locations": ["Austin, TX"], "skills": ["Python", "SQL"]}


def test_missing_key_gets_401(app_client: TestClient):
    response = app_client.get("/v1/integration")
    assert response.status_code == 401
    assert response.json()["type"] == "NotAuthenticated"


def test_unknown_key_gets_401(app_client: TestClient):
    response = app_client.get("/v1/integration", headers=Seats.auth("rm_not-a-key"))
    assert response.status_code == 401
    assert set(response.json()) == {"type", "detail"}


def test_hiring_collaborator_gets_403(app_client: TestClient, seats: Seats):
    response = app_client.put("/v1/pipelines/p-collab", json=PIPELINE, headers=seats.auth(seats.collaborator))
    assert response.status_code == 403
    assert response.json()["type"] == "LicenseNotEligible"
    integration = app_client.get("/v1/integration", headers=seats.auth(seats.collaborator)).json()
    assert integration["features"] == [] and "Hiring Collaborator" in integration["unavailable"]["recommended_matches"]


def test_integration_off_gets_403_feature_not_enabled(app_client: TestClient, api_settings):
    off = make_tenant(api_settings, integration_enabled=False)
    response = app_client.get("/v1/pipelines/p-1/matches", headers=off.auth(off.recruiter))
    assert response.status_code == 403
    assert response.json()["type"] == "FeatureNotEnabled"
    assert "turned off" in response.json()["detail"]


def test_crm_without_support_gets_403_feature_not_enabled(app_client: TestClient, api_settings):
    unsupported = make_tenant(api_settings, crm_supports_matches=False)
    response = app_client.put("/v1/pipelines/p-1", json=PIPELINE, headers=unsupported.auth(unsupported.admin))
    assert response.status_code == 403
    assert response.json()["type"] == "FeatureNotEnabled"


def test_integration_lists_features_for_a_recruiter(app_client: TestClient, seats: Seats):
    integration = app_client.get("/v1/integration", headers=seats.auth(seats.recruiter)).json()
    assert integration["features"] == ["recommended_matches"]
    assert integration["crm_origins"] == ["https://crm.example.com"]


def test_tenant_never_sees_another_tenants_pipeline(app_client: TestClient, seats: Seats, other_tenant: Seats):
    created = app_client.put("/v1/pipelines/p-private", json=PIPELINE, headers=seats.auth(seats.recruiter))
    assert created.status_code == 201
    for path in ("/v1/pipelines/p-private", "/v1/pipelines/p-private/matches"):
        response = app_client.get(path, headers=other_tenant.auth(other_tenant.admin))
        assert response.status_code == 404, path
    # The other tenant may use the same CRM id for its own pipeline: they stay apart.
    mine = app_client.put("/v1/pipelines/p-private", json={**PIPELINE, "title": "Nurse"},
                          headers=other_tenant.auth(other_tenant.admin))
    assert mine.status_code == 201
    mine_still = app_client.get("/v1/pipelines/p-private", headers=seats.auth(seats.recruiter)).json()
    assert mine_still["title"] == PIPELINE["title"]


def test_restricted_pipeline_is_visible_to_its_owner_and_admins_only(app_client: TestClient, seats: Seats):
    restricted = {**PIPELINE, "access_restricted": True, "owner_email": "rita@example.com"}
    created = app_client.put("/v1/pipelines/p-restricted", json=restricted, headers=seats.auth(seats.admin))
    assert created.status_code == 201
    assert app_client.get("/v1/pipelines/p-restricted", headers=seats.auth(seats.recruiter)).status_code == 200
    assert app_client.get("/v1/pipelines/p-restricted/matches", headers=seats.auth(seats.admin)).status_code == 200
    # To anyone else it does not exist: the same 404 as a missing pipeline, naming no owner.
    refused = app_client.get("/v1/pipelines/p-restricted/matches", headers=seats.auth(seats.other_recruiter))
    assert refused.status_code == 404 and refused.json()["type"] == "NotFound" and "rita" not in refused.text
    assert app_client.put("/v1/pipelines/p-restricted", json=PIPELINE,
                          headers=seats.auth(seats.other_recruiter)).status_code == 404


def test_validation_errors_name_the_field_and_the_limit(app_client: TestClient, seats: Seats):
    cases = [
        ({**PIPELINE, "title": "x" * 201}, "title", "200"),
        ({**PIPELINE, "locations": ["Austin"] * 11}, "locations", "10"),
        ({**PIPELINE, "skills": ["Python"] * 51}, "skills", "50"),
        ({**PIPELINE, "radius_km": 5000}, "radius_km", "500"),
        ({"locations": ["Austin"]}, "title", "required"),
    ]
    for body, field, limit in cases:
        response = app_client.put("/v1/pipelines/p-bad", json=body, headers=seats.auth(seats.recruiter))
        assert response.status_code == 422, body
        problem = response.json()
        assert problem["type"] == "InvalidInput"
        assert problem["detail"].startswith(field) and limit in problem["detail"], problem["detail"]
    too_many = {"pipelines": [{**PIPELINE, "crm_pipeline_id": f"p-{i}"} for i in range(101)]}
    response = app_client.post("/v1/pipelines:batch", json=too_many, headers=seats.auth(seats.recruiter))
    detail = response.json()["detail"]
    assert response.status_code == 422 and "pipelines" in detail and "100" in detail
    response = app_client.get("/v1/pipelines/p-bad/matches?page_size=126", headers=seats.auth(seats.recruiter))
    assert response.status_code == 422 and "page_size" in response.json()["detail"]


def test_candidate_pool_calls_need_an_operator_key(app_client: TestClient, seats: Seats, operator_key: str):
    candidate = {"candidate_id": "c-admin-1", "name": "Ada Admin", "title": "Registered Nurse"}
    for key in (seats.recruiter, seats.admin):
        response = app_client.put("/v1/admin/candidates/c-admin-1", json=candidate, headers=seats.auth(key))
        assert response.status_code == 403 and "operator" in response.json()["detail"]
    response = app_client.put("/v1/admin/candidates/c-admin-1", json={**candidate, "title": ""},
                              headers=seats.auth(operator_key))
    assert response.status_code == 422 and response.json()["detail"].startswith("title")
    response = app_client.put("/v1/admin/candidates/c-admin-1", json=candidate, headers=seats.auth(operator_key))
    assert response.status_code == 200 and response.json()["occupation_codes"] == ["29-1141.00"]
    assert app_client.delete("/v1/admin/candidates/c-admin-1", headers=seats.auth(operator_key)).status_code == 204


def test_a_checked_key_is_trusted_for_the_cache_time_only(api_settings):
    seats = make_tenant(api_settings)
    key = seats.recruiter
    now = [0.0]
    cache = accounts.KeyCache(ttl=30, timer=lambda: now[0])

    async def work(es, names):
        first = await accounts.authenticate(es=es, names=names, api_key=key, cache=cache)
        await es.delete(index=names.accounts, id=f"seat:{accounts.hash_key(key)}", refresh=True)
        now[0] = 29.0  # revoked, but still within the cache time of this process
        cached = await accounts.authenticate(es=es, names=names, api_key=key, cache=cache)
        outcomes = []
        for later in (accounts.KeyCache(ttl=0), cache):  # no cache; the cache once its time is up
            now[0] = 31.0
            try:
                await accounts.authenticate(es=es, names=names, api_key=key, cache=later)
                outcomes.append("accepted")
            except NotAuthenticated:
                outcomes.append("refused")
        return first, cached, outcomes

    first, cached, outcomes = run_async(api_settings, work)
    assert cached == first and cached.seat.email == "rita@example.com"
    assert outcomes == ["refused", "refused"]
