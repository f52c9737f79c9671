"""The traps a CRM integrator met on a first day with the API, each closed (issue 14)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from recmatch.core.config import Settings
from tests.integration.support import ROOT, Seats
from tests.integration.test_observability import metric

pytestmark = pytest.mark.integration

BACKEND = {"title": "Backend Engineer", "locations": ["Austin, TX"], "skills": ["Python"]}


def test_a_wrong_api_key_is_called_a_wrong_api_key(app_client: TestClient):
    for key in ("nope", "rm_demo_not-a-real-key", "rm_nope"):
        response = app_client.get("/v1/pipelines/p-any/matches", headers=Seats.auth(key))
        assert response.status_code == 401, key
        assert response.json()["detail"].startswith("this API key is not valid"), (key, response.text)
        assert "widget" not in response.json()["detail"]


def test_a_forged_widget_token_is_still_called_a_widget_token(app_client: TestClient):
    response = app_client.get("/v1/pipelines/p-any/matches", headers=Seats.auth("aaa.bbb.ccc"))
    assert response.status_code == 401 and "widget token is not valid" in response.json()["detail"]


def test_malformed_json_names_the_line_and_column(app_client: TestClient, seats: Seats):
    response = app_client.put("/v1/pipelines/p-json", content=b'{"title": nope}',
                              headers={**seats.auth(seats.recruiter), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"type": "InvalidJSON",
                               "detail": "body is not valid JSON at line 1, column 11: expecting value"}
    two_lines = app_client.put("/v1/pipelines/p-json", content=b'{"title": "x",\n "skills": [1,}',
                               headers={**seats.auth(seats.recruiter), "Content-Type": "application/json"})
    assert two_lines.json()["detail"].startswith("body is not valid JSON at line 2, column 15")


def test_batch_stores_the_good_items_and_says_why_the_bad_ones_were_refused(app_client: TestClient, seats: Seats):
    batch = {"pipelines": [{**BACKEND, "crm_pipeline_id": "p-bi1"},
                           {"crm_pipeline_id": "p-bi2", "locations": ["Austin, TX"]},  # no title
                           {**BACKEND, "crm_pipeline_id": "p-bi3", "radius_km": 9000},
                           {**BACKEND},  # no id
                           {**BACKEND, "crm_pipeline_id": "p-bi5"}]}
    response = app_client.post("/v1/pipelines:batch", json=batch, headers=seats.auth(seats.recruiter))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["stored"], answer["refused"]) == (2, 3)
    statuses = [(r["index"], r["crm_pipeline_id"], r["status"]) for r in answer["results"]]
    assert statuses == [(0, "p-bi1", "created"), (1, "p-bi2", "refused"), (2, "p-bi3", "refused"),
                        (3, None, "refused"), (4, "p-bi5", "created")]
    errors = [r["error"] for r in answer["results"]]
    assert errors[1]["type"] == "InvalidInput" and "pipelines.1.title" in errors[1]["detail"]
    assert "pipelines.2.radius_km" in errors[2]["detail"] and "500" in errors[2]["detail"]
    assert "pipelines.3.crm_pipeline_id" in errors[3]["detail"]
    for stored in ("p-bi1", "p-bi5"):
        assert app_client.get(f"/v1/pipelines/{stored}", headers=seats.auth(seats.recruiter)).status_code == 200
    assert app_client.get("/v1/pipelines/p-bi2", headers=seats.auth(seats.recruiter)).status_code == 404


def test_widget_url_is_absolute(app_client: TestClient, seats: Seats):
    app_client.put("/v1/pipelines/p-abs", json=BACKEND, headers=seats.auth(seats.recruiter))
    minted = app_client.post("/v1/pipelines/p-abs/widget-token", headers=seats.auth(seats.recruiter)).json()
    assert minted["widget_url"].startswith("http://testserver/widget/p-abs?token=")
    assert app_client.get(minted["widget_url"]).status_code == 200


def test_widget_url_follows_the_public_base_url_when_one_is_set(api_settings: Settings, candidate_pool, seats: Seats):
    from recmatch.api.app import create_app

    public = Settings(**{**api_settings.model_dump(), "public_base_url": "https://matches.example.com/"})
    with TestClient(create_app(public)) as client:
        client.put("/v1/pipelines/p-pub", json=BACKEND, headers=seats.auth(seats.recruiter))
        minted = client.post("/v1/pipelines/p-pub/widget-token", headers=seats.auth(seats.recruiter)).json()
    assert minted["widget_url"].startswith("https://matches.example.com/widget/p-pub?token=")


def test_docs_load_their_assets_from_this_server(app_client: TestClient):
    page = app_client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "unpkg" not in page.text
    for asset in ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css"):
        assert asset in page.text
        response = app_client.get(asset)
        assert response.status_code == 200 and len(response.content) > 10_000


def test_static_files_are_counted_under_their_mount_not_as_unmatched(app_client: TestClient):
    before_unmatched = metric(app_client, "recmatch_http_requests_total", route="unmatched", status="200")
    before = metric(app_client, "recmatch_http_requests_total", route="/widget/static/{path}", status="200")
    assert app_client.get("/widget/static/widget.css").status_code == 200
    assert app_client.get("/widget/static/dom.js").status_code == 200
    assert metric(app_client, "recmatch_http_requests_total", route="/widget/static/{path}", status="200") == before + 2
    assert metric(app_client, "recmatch_http_requests_total", route="unmatched", status="200") == before_unmatched


def test_one_variable_moves_the_local_node(monkeypatch: pytest.MonkeyPatch):
    for name in ("RECMATCH_ES_URL", "RECMATCH_LOCAL_ES_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECMATCH_LOCAL_ES_PORT", "9311")
    assert Settings(_env_file=None).es_url == "http://127.0.0.1:9311"
    monkeypatch.delenv("RECMATCH_LOCAL_ES_PORT")
    monkeypatch.setenv("RECMATCH_ES_URL", "http://localhost:9322")
    assert Settings(_env_file=None).local_es_port == 9322
    monkeypatch.setenv("RECMATCH_ES_URL", "https://search.example.com:9243")
    assert Settings(_env_file=None).local_es_port == 9200  # a remote cluster does not move the local node


def test_demo_on_a_busy_port_fails_before_printing_anything(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "recmatch", "demo", "--source", str(tmp_path / "none.jsonl"),
                               "--port", str(port)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "ready" not in done.stdout and "API key" not in done.stdout
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr


def test_demo_origins_cover_both_loopback_names():
    from recmatch.ops.cli import demo_origins

    assert demo_origins("127.0.0.1", 8011) == ["http://127.0.0.1:8011", "http://localhost:8011"]
    assert demo_origins("0.0.0.0", 8000) == ["http://127.0.0.1:8000", "http://localhost:8000"]
    assert demo_origins("crm.test", 8000) == ["http://crm.test:8000"]


NURSE = {"title": "Registered Nurse", "locations": ["Boston, MA"], "skills": ["Patient Care"], "radius_km": 80}


def _upsert(api_settings: Settings, es, candidate: dict) -> None:
    """A live upsert as the admin route makes it (the route's own access rules are tested elsewhere)."""
    from recmatch.core.models import CandidateIn
    from recmatch.indexing import reindex as indexing

    indexing.upsert_candidate(es=es, settings=api_settings, candidate=CandidateIn.model_validate(candidate))


def _first_page(client: TestClient, key: str, pipeline: str, **params) -> dict:
    response = client.get(f"/v1/pipelines/{pipeline}/matches", params={"page_size": 125, **params},
                          headers=Seats.auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_refresh_includes_a_candidate_upserted_since_the_list_was_made(app_client: TestClient, seats: Seats,
                                                                       api_settings: Settings, es):
    app_client.put("/v1/pipelines/p-fresh", json=NURSE, headers=seats.auth(seats.recruiter))
    before = _first_page(app_client, seats.recruiter, "p-fresh")
    newcomer = {"candidate_id": "c-fresh-nurse", "name": "Nora Newcomer", "title": "Registered Nurse",
                "skills": ["Patient Care"], "location": {"name": "Boston, MA, US"}, "open_to_work": True,
                "years_experience": 6, "past_titles": ["Nursing Assistant"]}
    _upsert(api_settings, es, newcomer)
    same_day = _first_page(app_client, seats.recruiter, "p-fresh")
    assert same_day["snapshot"] == before["snapshot"]
    assert "c-fresh-nurse" not in [c["candidate_id"] for c in same_day["candidates"]]  # a plain read keeps the list
    refreshed = _first_page(app_client, seats.recruiter, "p-fresh", refresh="true")
    assert refreshed["computed"] is True
    listed = {c["candidate_id"]: c for c in refreshed["candidates"]}
    assert "c-fresh-nurse" in listed
    # The detail a recruiter opens: open to work, years, seniority, past titles, all skills.
    nora = listed["c-fresh-nurse"]
    assert nora["open_to_work"] is True and nora["years_experience"] == 6
    assert nora["past_titles"] == ["Nursing Assistant"] and nora["skills"] == ["patient care"]
    assert nora["seniority"] is not None
    # Pages of the refreshed list agree with its first page, and a second refresh with nothing new keeps it.
    page = app_client.get("/v1/pipelines/p-fresh/matches", headers=seats.auth(seats.recruiter),
                          params={"page": 1, "page_size": 125, "snapshot": refreshed["snapshot"]}).json()
    assert [c["candidate_id"] for c in page["candidates"]] == [c["candidate_id"] for c in refreshed["candidates"]]
    again = _first_page(app_client, seats.recruiter, "p-fresh", refresh="true")
    assert again["computed"] is False


def test_recmatch_refresh_ranks_again_when_candidates_arrived(app_client: TestClient, seats: Seats,
                                                              api_settings: Settings, es):
    from datetime import UTC, datetime

    from recmatch.matches.refresh import refresh_active
    from tests.integration.support import run_async

    app_client.put("/v1/pipelines/p-cron", json=NURSE, headers=seats.auth(seats.recruiter))
    _first_page(app_client, seats.recruiter, "p-cron")
    _upsert(api_settings, es, {"candidate_id": "c-cron-nurse", "name": "Cara Cron", "title": "Registered Nurse",
                               "skills": ["Patient Care"], "location": {"name": "Boston, MA, US"}})
    today = datetime.now(UTC).date()
    computed, _ = run_async(api_settings, lambda e, n: refresh_active(es=e, names=n, today=today))
    assert computed >= 1
    listed = _first_page(app_client, seats.recruiter, "p-cron")
    assert "c-cron-nurse" in [c["candidate_id"] for c in listed["candidates"]]


def test_candidates_already_in_the_crm_are_left_out_of_that_tenants_lists(
        app_client: TestClient, seats: Seats, other_tenant: Seats):
    app_client.put("/v1/pipelines/p-held", json=NURSE, headers=seats.auth(seats.recruiter))
    app_client.put("/v1/pipelines/p-held", json=NURSE, headers=other_tenant.auth(other_tenant.recruiter))
    first = _first_page(app_client, seats.recruiter, "p-held")["candidates"]
    by_id, by_url = first[0], next(c for c in first[1:] if c["profile_url"])
    batch = {"candidates": [{"member_id": by_id["candidate_id"]}, {"profile_url": by_url["profile_url"] + "/"},
                            {}, {"member_id": "bad id with spaces"}]}
    answer = app_client.post("/v1/crm-candidates:batch", json=batch, headers=seats.auth(seats.recruiter))
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["held", "held", "refused", "refused"]
    assert "member_id, profile_url" in answer.json()["results"][2]["error"]["detail"]
    refreshed = [c["candidate_id"] for c in _first_page(app_client, seats.recruiter, "p-held", refresh="true")[
        "candidates"]]
    assert by_id["candidate_id"] not in refreshed and by_url["candidate_id"] not in refreshed
    # The slots went to other candidates when more qualify (a full list stays full).
    assert len(refreshed) == (len(first) if len(first) == 125 else len(first) - 2)
    theirs = [c["candidate_id"] for c in _first_page(app_client, other_tenant.recruiter, "p-held", refresh="true")[
        "candidates"]]
    assert by_id["candidate_id"] in theirs  # another tenant's CRM does not hold them
    forget = app_client.post("/v1/crm-candidates:batch", json={"candidates": [{"member_id": by_id["candidate_id"]}],
                                                               "remove": True}, headers=seats.auth(seats.recruiter))
    assert forget.json()["results"][0]["status"] == "removed"
    one = app_client.post("/v1/crm-candidates", json={"member_id": "c-000001"}, headers=seats.auth(seats.recruiter))
    assert one.status_code == 200 and one.json() == {"held": 1}
    assert app_client.post("/v1/crm-candidates", json={"member_id": "c-1"},
                           headers=seats.auth(seats.collaborator)).status_code == 403


def test_undo_of_a_dismissal_restores_status_list_and_learning(app_client: TestClient, seats: Seats):
    key = seats.auth(seats.recruiter)
    app_client.put("/v1/pipelines/p-undo", json=NURSE, headers=key)
    first = _first_page(app_client, seats.recruiter, "p-undo")["candidates"]
    kept, undone = first[0]["candidate_id"], first[1]["candidate_id"]
    assert app_client.post(f"/v1/pipelines/p-undo/candidates/{kept}/save", headers=key).status_code == 200
    learned_after_save = app_client.get("/v1/pipelines/p-undo/learned", headers=key).json()
    learned_after_save = (learned_after_save["items"], learned_after_save["examples"])
    dismissed = app_client.post(f"/v1/pipelines/p-undo/candidates/{undone}/dismiss", json={"reason": "title"},
                                headers=key)
    assert dismissed.status_code == 200
    learned = app_client.get("/v1/pipelines/p-undo/learned", headers=key).json()
    assert learned["examples"] == learned_after_save[1] + 1  # the dismissal is learned from
    back = app_client.delete(f"/v1/pipelines/p-undo/candidates/{undone}/dismiss", headers=key)
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "none"
    learned = app_client.get("/v1/pipelines/p-undo/learned", headers=key).json()
    assert (learned["items"], learned["examples"]) == learned_after_save  # and forgotten again
    listed = {c["candidate_id"]: c for c in _first_page(app_client, seats.recruiter, "p-undo")["candidates"]}
    assert undone in listed and listed[undone]["status"] is None
    again = app_client.delete(f"/v1/pipelines/p-undo/candidates/{undone}/dismiss", headers=key)
    assert again.status_code == 404
    # Saved and then dismissed: the undo leaves it saved.
    app_client.post(f"/v1/pipelines/p-undo/candidates/{kept}/dismiss", json={"reason": "skills"}, headers=key)
    assert app_client.delete(f"/v1/pipelines/p-undo/candidates/{kept}/dismiss",
                             headers=key).json()["status"] == "saved"


def test_inmail_without_a_messaging_webhook_is_refused_and_not_recorded(app_client: TestClient, seats: Seats):
    key = seats.auth(seats.recruiter)
    app_client.put("/v1/pipelines/p-nomsg", json=NURSE, headers=key)
    candidate_id = _first_page(app_client, seats.recruiter, "p-nomsg")["candidates"][0]["candidate_id"]
    response = app_client.post(f"/v1/pipelines/p-nomsg/candidates/{candidate_id}/inmail",
                               json={"subject": "Hello", "body": "A role for you"}, headers=key)
    assert response.status_code == 409 and response.json()["type"] == "MessagingNotConfigured"
    assert "nothing was sent" in response.json()["detail"]
    listed = {c["candidate_id"]: c for c in _first_page(app_client, seats.recruiter, "p-nomsg")["candidates"]}
    assert listed[candidate_id]["status"] is None
