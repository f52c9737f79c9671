"""Actions end to end through the API, delivered to a real webhook receiver, and the ranking that learns."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from recmatch.api.app import create_app
from recmatch.core.config import Settings
from recmatch.core.es import IndexNames
from tests.integration.support import Seats, make_tenant
from tests.integration.webhook_receiver import WebhookReceiver

PIPELINE = {"title": "Registered Nurse", "locations": ["Boston, MA", "Remote"], "skills": ["Epic Systems"],
            "remote_ok": True, "radius_km": 100}


@dataclass
class World:
    client: TestClient
    seats: Seats
    receiver: WebhookReceiver
    es: Elasticsearch
    settings: Settings

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        return {**self.seats.auth(key or self.seats.recruiter), **extra}

    def pipeline(self, **changes: object) -> str:
        crm_id = f"p-{uuid.uuid4().hex[:8]}"
        response = self.client.put(f"/v1/pipelines/{crm_id}", json={**PIPELINE, **changes}, headers=self.headers())
        assert response.status_code == 201, response.text
        return crm_id

    def listing(self, crm_id: str, **params: object) -> dict:
        response = self.client.get(f"/v1/pipelines/{crm_id}/matches", params=params, headers=self.headers())
        assert response.status_code == 200, response.text
        return response.json()

    def act(self, crm_id: str, candidate_id: str, action: str, body: dict | None = None, key: str | None = None,
            **headers: str):
        return self.client.post(f"/v1/pipelines/{crm_id}/candidates/{candidate_id}/{action}", json=body,
                                headers=self.headers(key, **headers))


def eventually(check: Callable[[], object], what: str, seconds: float = 30.0) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


def world_for(api_settings: Settings, es: Elasticsearch, **overrides: object) -> Iterator[World]:
    receiver = WebhookReceiver().start()
    settings = api_settings.model_copy(update={"delivery_poll_interval": 0.1, "delivery_backoff_base": 0.1,
                                               "delivery_backoff_cap": 0.5, **overrides})
    seats = make_tenant(settings, webhook_url=f"{receiver.url}/crm", messaging_webhook_url=f"{receiver.url}/messaging")
    receiver.secret = seats.tenant.webhook_secret.get_secret_value()
    with TestClient(create_app(settings)) as client:
        yield World(client=client, seats=seats, receiver=receiver, es=es, settings=settings)
    receiver.stop()


@pytest.fixture
def world(api_settings: Settings, es: Elasticsearch, candidate_pool) -> Iterator[World]:
    yield from world_for(api_settings, es)


def received(world: World, event: str, candidate_id: str):
    return [r for r in world.receiver.received if r.event == event and r.answered == 200
            and r.body["data"]["candidate"]["member_id"] == candidate_id]


def test_save_reaches_the_crm_and_shows_in_the_list(world: World):
    crm_id = world.pipeline()
    first = world.listing(crm_id)
    candidate_id = first["candidates"][0]["candidate_id"]
    saved = world.act(crm_id, candidate_id, "save")
    assert saved.status_code == 200 and saved.json()["status"] == "saved" and not saved.json()["repeated"]
    delivery = eventually(lambda: received(world, "prospect.saved", candidate_id), "prospect.saved delivery")[0]
    assert delivery.signature_ok and delivery.path == "/crm"
    stub = delivery.body["data"]["candidate"]
    assert set(stub) == {"member_id", "name", "current_title", "employer", "headline", "location", "profile_url"}
    same_snapshot = world.listing(crm_id, snapshot=first["snapshot"])
    assert same_snapshot["candidates"][0]["status"] == "saved"  # the recruiter keeps their place
    next_list = world.listing(crm_id)
    assert next_list["snapshot"] != first["snapshot"]
    assert candidate_id not in [c["candidate_id"] for c in next_list["candidates"]]


def test_repeating_an_action_sends_nothing_twice(world: World):
    crm_id = world.pipeline()
    candidate_id = world.listing(crm_id)["candidates"][1]["candidate_id"]
    assert not world.act(crm_id, candidate_id, "save").json()["repeated"]
    again = world.act(crm_id, candidate_id, "save")
    assert again.status_code == 200 and again.json()["repeated"]
    eventually(lambda: received(world, "prospect.saved", candidate_id), "the delivery")
    outbox = f"{world.settings.index_prefix}-outbox"
    world.es.indices.refresh(index=outbox)
    mine = {"bool": {"filter": [{"term": {"candidate_id": candidate_id}},
                                {"term": {"tenant_id": world.seats.tenant.tenant_id}}]}}
    queued = world.es.count(index=outbox, query=mine)["count"]
    assert queued == 1 and len(received(world, "prospect.saved", candidate_id)) == 1


def test_idempotency_key_replays_the_answer_and_refuses_another_body(world: World):
    crm_id = world.pipeline()
    candidate_id = world.listing(crm_id)["candidates"][2]["candidate_id"]
    body = {"reason": "location"}
    first = world.act(crm_id, candidate_id, "dismiss", body, **{"Idempotency-Key": "k-1"})
    second = world.act(crm_id, candidate_id, "dismiss", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    other = world.act(crm_id, candidate_id, "dismiss", {"reason": "title"}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and other.json()["type"] == "Conflict"


def test_export_only_when_the_candidate_allows_it(world: World):
    crm_id = world.pipeline()
    candidates = world.listing(crm_id, page_size=125)["candidates"]
    private = next(c for c in candidates if not c["allow_export"])
    refused = world.act(crm_id, private["candidate_id"], "export")
    assert refused.status_code == 409 and refused.json()["type"] == "NotExportable"
    public = next(c for c in candidates if c["allow_export"])
    assert world.act(crm_id, public["candidate_id"], "export").status_code == 200
    delivery = eventually(lambda: received(world, "profile.exported", public["candidate_id"]), "profile.exported")[0]
    assert delivery.body["data"]["candidate"]["name"] == public["name"]


def test_export_limit_answers_429_with_the_reset_date(api_settings, es, candidate_pool):
    for world in world_for(api_settings, es, export_monthly_limit=2):
        crm_id = world.pipeline()
        exportable = [c for c in world.listing(crm_id, page_size=125)["candidates"] if c["allow_export"]][:3]
        assert [world.act(crm_id, c["candidate_id"], "export").status_code for c in exportable[:2]] == [200, 200]
        third = world.act(crm_id, exportable[2]["candidate_id"], "export")
        assert third.status_code == 429 and third.json()["type"] == "LimitReached"
        assert re.search(r"resets on \d{4}-\d{2}-01", third.json()["detail"])
        assert int(third.headers["Retry-After"]) > 0


def test_inmail_carries_a_share_link_and_shared_contact_reaches_the_crm(world: World):
    crm_id = world.pipeline()
    candidate_id = world.listing(crm_id)["candidates"][3]["candidate_id"]
    sent = world.act(crm_id, candidate_id, "inmail", {"subject": "A nursing role in Boston", "body": "Hello!"})
    assert sent.status_code == 200
    share_url = sent.json()["share_url"]
    message = eventually(lambda: received(world, "inmail.sent", candidate_id), "inmail.sent")[0]
    assert message.path == "/messaging" and message.body["data"]["share_url"] == share_url
    path = share_url.split("://", 1)[1].split("/", 1)[1]
    form = world.client.get(f"/{path}")
    assert form.status_code == 200 and 'name="email"' in form.text
    # The page says who would like to reach the candidate, for which company and role.
    assert re.search(r"<strong>\S+@example.com</strong> of <strong>Acme [0-9a-f]{4}</strong> would like to reach you, "
                     r"about the <strong>[^<]+</strong> role", form.text), form.text
    assert world.client.post(f"/{path}", data={"email": "not-an-email"}).status_code == 422
    done = world.client.post(f"/{path}", data={"email": "nia@example.org", "phone": "+1 617 555 0100"})
    assert done.status_code == 200 and "Thank you" in done.text
    shared = eventually(lambda: received(world, "contact.shared", candidate_id), "contact.shared")[0]
    assert (shared.body["data"]["email"], shared.body["data"]["phone"]) == ("nia@example.org", "+1 617 555 0100")
    again = world.act(crm_id, candidate_id, "inmail", {"subject": "again", "body": "again"})
    assert again.status_code == 409
    assert world.client.get("/share/not-a-token").status_code == 401


def test_inmail_validation_names_the_field(world: World):
    crm_id = world.pipeline()
    candidate_id = world.listing(crm_id)["candidates"][0]["candidate_id"]
    response = world.act(crm_id, candidate_id, "inmail", {"subject": "x" * 201, "body": "hi"})
    assert response.status_code == 422 and response.json()["detail"].startswith("subject")


def _skills(world: World, candidate_ids: list[str]) -> dict[str, set[str]]:
    found = world.es.mget(index=IndexNames(world.settings.index_prefix).candidates, ids=candidate_ids,
                          source_includes=["skills"])
    return {doc["_id"]: set(doc["_source"].get("skills") or ()) for doc in found["docs"]}


def _learned_functions(listing: dict) -> list[dict]:
    """The learned factors of a list's query, each as its own filter and weight (a list relaxed to title words
    applies each one only to those the title brings: the factor's filter is then the first of two)."""
    functions = listing["query"]["query"]["function_score"]["functions"]
    return [{**function, "filter": function["filter"]["bool"]["filter"][0]}
            if "filter" in function["filter"].get("bool", {}) else function for function in functions]


def test_dismissals_alone_teach_nothing_and_the_dismissed_stay_out(world: World):
    crm_id = world.pipeline()
    first = world.listing(crm_id, page_size=125)
    dismissed = [c["candidate_id"] for c in first["candidates"][:3]]
    for candidate_id in dismissed:
        assert world.act(crm_id, candidate_id, "dismiss", {"reason": "title"}).status_code == 200
    learned = world.client.get(f"/v1/pipelines/{crm_id}/learned", headers=world.headers()).json()
    assert learned["learning_version"] == 3 and learned["items"] == []  # nothing to tell the dismissed apart from
    assert learned["examples"] == 3
    second = world.listing(crm_id, page_size=125, explain=True)  # read-your-writes: the very next list
    assert second["snapshot"].endswith("-l3") and _learned_functions(second) == []
    assert not set(dismissed) & {c["candidate_id"] for c in second["candidates"]}
    # Acting on the 4th of the new list's first page: the three above it were read and passed over.
    fourth = second["candidates"][3]["candidate_id"]
    assert world.act(crm_id, fourth, "save").status_code == 200
    assert world.client.get(f"/v1/pipelines/{crm_id}/learned", headers=world.headers()).json()["examples"] == 7


def test_the_next_list_reflects_what_separates_saves_from_dismissals_and_delete_forgets_it(world: World):
    crm_id = world.pipeline()
    first = world.listing(crm_id, page_size=125)
    ids = [c["candidate_id"] for c in first["candidates"]]
    skills = _skills(world, ids)
    listed = {"epic systems"}
    shares = Counter(skill for cid in ids[:60] for skill in skills[cid] - listed)
    wanted = next(skill for skill, n in shares.most_common() if n <= 40)  # common, but not everyone's
    having = [cid for cid in ids[:60] if wanted in skills[cid]][:4]
    lacking = [cid for cid in ids[:60] if wanted not in skills[cid]][:4]
    assert len(having) == 4 and len(lacking) == 4
    for candidate_id in having:
        assert world.act(crm_id, candidate_id, "save").status_code == 200
    for candidate_id in lacking:
        assert world.act(crm_id, candidate_id, "dismiss", {"reason": "skills"}).status_code == 200

    learned = world.client.get(f"/v1/pipelines/{crm_id}/learned", headers=world.headers()).json()
    item = next(item for item in learned["items"] if (item["kind"], item["key"]) == ("skills", wanted))
    assert item["direction"] == "more" and item["weight"] > 1
    assert item["text"].endswith("(4 of 4 saves have it, 0 of 4 dismissals)"), item
    second = world.listing(crm_id, page_size=125, explain=True)  # the very next list uses what was learned
    assert {"filter": {"term": {"skills": wanted}}, "weight": item["weight"]} in _learned_functions(second)
    rest = [cid for cid in ids if cid not in set(having) | set(lacking)]
    after = [c["candidate_id"] for c in second["candidates"]]
    after_skills = _skills(world, after[:25])
    before_share = sum(wanted in skills[cid] for cid in rest[:25])
    assert sum(wanted in after_skills[cid] for cid in after[:25]) > before_share

    removed = world.client.delete(f"/v1/pipelines/{crm_id}/learned/skills/{wanted}", headers=world.headers())
    assert removed.status_code == 200, removed.text
    assert f"skills:{wanted}" in removed.json()["removed"]
    assert all(item["key"] != wanted for item in removed.json()["items"])
    third = world.listing(crm_id, page_size=125, explain=True)
    assert all(f["filter"] != {"term": {"skills": wanted}} for f in _learned_functions(third))
    unknown = world.client.delete(f"/v1/pipelines/{crm_id}/learned/astrology/leo", headers=world.headers())
    assert unknown.status_code == 422 and unknown.json()["detail"].startswith("kind")

    reset = world.client.delete(f"/v1/pipelines/{crm_id}/learned", headers=world.headers()).json()
    assert reset["items"] == [] and reset["removed"] == []
    fourth = world.listing(crm_id, page_size=125, explain=True)
    assert _learned_functions(fourth) == []
    assert [c["candidate_id"] for c in fourth["candidates"]][:len(rest)] == rest  # as if nothing was learned


def test_hiring_collaborator_and_other_tenants_cannot_act(world: World, api_settings):
    crm_id = world.pipeline()
    candidate_id = world.listing(crm_id)["candidates"][0]["candidate_id"]
    refused = world.act(crm_id, candidate_id, "save", key=world.seats.collaborator)
    assert refused.status_code == 403 and refused.json()["type"] == "LicenseNotEligible"
    stranger = make_tenant(api_settings)
    response = world.client.post(f"/v1/pipelines/{crm_id}/candidates/{candidate_id}/save",
                                 headers=stranger.auth(stranger.admin))
    assert response.status_code == 404
