"""The list: 125 ranked candidates with reasons, stable paging, snapshots, relaxation, erasure, ES down."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest
from fastapi.testclient import TestClient

from recmatch.accounts import holdings
from recmatch.accounts import service as accounts
from recmatch.api.app import create_app
from recmatch.api.deps import get_today
from recmatch.core.ids import pipeline_doc_id
from recmatch.core.models import PipelineIn
from recmatch.matches import rank, refresh
from recmatch.matches import service as matches
from recmatch.matches.memory import UNSTORED_AT_MOST, ListMemory
from recmatch.pipelines import service as pipelines
from recmatch.ranking.query import MAX_SIZE, applicable_steps, build_query
from recmatch.ranking.reasons import Wording
from recmatch.ranking.understand import understand
from recmatch.snapshots import store as snapshots
from recmatch.text.taxonomy import get_taxonomy
from tests.integration.support import Seats, run_async

BACKEND = {"title": "Senior Software Engineer", "locations": ["San Francisco Bay Area", "Remote"],
           "skills": ["Python", "JavaScript", "SQL"], "remote_ok": True, "radius_km": 80}


def ids(pages: list[dict]) -> list[str]:
    return [c["candidate_id"] for page in pages for c in page["candidates"]]


def all_pages(client: TestClient, key: str, pipeline: str, page_size: int = 25,
              snapshot: str | None = None) -> list[dict]:
    first = client.get(f"/v1/pipelines/{pipeline}/matches", params={"page_size": page_size, **(
        {"snapshot": snapshot} if snapshot else {})}, headers=Seats.auth(key)).json()
    pages = [first]
    for page in range(2, first["pages"] + 1):
        pages.append(client.get(f"/v1/pipelines/{pipeline}/matches", headers=Seats.auth(key),
                                params={"page": page, "page_size": page_size, "snapshot": first["snapshot"]}).json())
    return pages


@pytest.fixture
def moving_day(app_client: TestClient):
    """Set the API's idea of today; restored after the test."""
    def set_day(day: date) -> None:
        app_client.app.dependency_overrides[get_today] = lambda: day
    yield set_day
    app_client.app.dependency_overrides.pop(get_today, None)


def test_list_has_125_ranked_candidates_with_reasons(app_client: TestClient, seats: Seats):
    app_client.put("/v1/pipelines/p-backend", json=BACKEND, headers=seats.auth(seats.recruiter))
    pages = all_pages(app_client, seats.recruiter, "p-backend")
    candidates = [c for page in pages for c in page["candidates"]]
    # the 3,000-candidate pool spans every occupation: the list is as long as who is within reach or remote
    total = pages[0]["total"]
    assert len(candidates) == total and 100 <= total <= 125
    assert [c["rank"] for c in candidates] == list(range(1, total + 1))
    assert len({c["candidate_id"] for c in candidates}) == total
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0
    top = candidates[0]
    assert any(reason.startswith("title") for reason in top["reasons"]), top["reasons"]
    assert set(top["matched_skills"]) <= {"Python", "JavaScript", "SQL"}


def test_pages_never_reshuffle_under_a_snapshot(app_client: TestClient, seats: Seats, operator_key: str):
    app_client.put("/v1/pipelines/p-stable", json=BACKEND, headers=seats.auth(seats.recruiter))
    before = all_pages(app_client, seats.recruiter, "p-stable")
    # A perfect new candidate arrives: the snapshot being paged does not change.
    perfect = {"candidate_id": "c-perfect", "name": "Pat Perfect", "title": "Senior Software Engineer",
               "skills": ["Python", "JavaScript", "SQL"], "open_to_remote": True,
               "location": {"name": "San Francisco, CA, US"}}
    upserted = app_client.put("/v1/admin/candidates/c-perfect", json=perfect, headers=seats.auth(operator_key))
    assert upserted.status_code == 200
    after = all_pages(app_client, seats.recruiter, "p-stable", snapshot=before[0]["snapshot"])
    assert ids(after) == ids(before)
    assert "c-perfect" not in ids(after)


def test_field_change_makes_a_new_snapshot(app_client: TestClient, seats: Seats):
    app_client.put("/v1/pipelines/p-change", json=BACKEND, headers=seats.auth(seats.recruiter))
    first = app_client.get("/v1/pipelines/p-change/matches", headers=seats.auth(seats.recruiter)).json()
    again = app_client.put("/v1/pipelines/p-change", json={**BACKEND, "owner_email": "rita@example.com"},
                           headers=seats.auth(seats.recruiter)).json()
    assert again["version"] == first["pipeline_version"]  # the owner does not drive ranking
    changed = app_client.put("/v1/pipelines/p-change", json={**BACKEND, "title": "Registered Nurse", "skills": []},
                             headers=seats.auth(seats.recruiter)).json()
    assert changed["version"] == first["pipeline_version"] + 1
    second = app_client.get("/v1/pipelines/p-change/matches", headers=seats.auth(seats.recruiter)).json()
    assert second["snapshot"] != first["snapshot"]
    assert any("nurse" in c["title"].lower() for c in second["candidates"][:5])


def test_a_new_day_makes_a_new_snapshot_and_marks_new_candidates(app_client: TestClient, seats: Seats,
                                                                 operator_key: str, moving_day):
    app_client.put("/v1/pipelines/p-daily", json=BACKEND, headers=seats.auth(seats.recruiter))
    day = date(2030, 1, 10)
    moving_day(day)
    first = app_client.get("/v1/pipelines/p-daily/matches?page_size=125", headers=seats.auth(seats.recruiter)).json()
    assert not any(c["new"] for c in first["candidates"])  # nothing to compare with on the first day
    newcomer = {"candidate_id": "c-newcomer", "name": "Nia New", "title": "Senior Software Engineer",
                "skills": ["Python", "JavaScript", "SQL"], "open_to_remote": True, "years_experience": 9,
                "location": {"name": "Oakland, CA, US"}}
    app_client.put("/v1/admin/candidates/c-newcomer", json=newcomer, headers=seats.auth(operator_key))
    moving_day(day + timedelta(days=1))
    second = app_client.get("/v1/pipelines/p-daily/matches?page_size=125", headers=seats.auth(seats.recruiter)).json()
    assert second["snapshot"] != first["snapshot"]
    flagged = {c["candidate_id"] for c in second["candidates"] if c["new"]}
    assert "c-newcomer" in {c["candidate_id"] for c in second["candidates"]}
    assert "c-newcomer" in flagged
    assert flagged == set(ids([second])) - set(ids([first]))
    # A field change later that day: the new list is still compared with the previous day's.
    app_client.put("/v1/pipelines/p-daily", json={**BACKEND, "radius_km": 90}, headers=seats.auth(seats.recruiter))
    third = app_client.get("/v1/pipelines/p-daily/matches?page_size=125", headers=seats.auth(seats.recruiter)).json()
    assert third["snapshot"] not in (first["snapshot"], second["snapshot"])
    assert {c["candidate_id"] for c in third["candidates"] if c["new"]} == set(ids([third])) - set(ids([first]))


def test_a_new_list_is_stored_after_the_page_is_sent(app_client: TestClient, seats: Seats, es, api_settings):
    app_client.put("/v1/pipelines/p-stored", json=BACKEND, headers=seats.auth(seats.recruiter))
    first = app_client.get("/v1/pipelines/p-stored/matches", headers=seats.auth(seats.recruiter)).json()
    assert first["computed"] is True
    doc_id = pipeline_doc_id(seats.tenant.tenant_id, "p-stored")
    stored = es.get(index=f"{api_settings.index_prefix}-snapshots", id=f"{doc_id}:{first['snapshot']}")["_source"]
    assert stored["candidate_ids"][:25] == [c["candidate_id"] for c in first["candidates"]]
    pipeline = es.get(index=f"{api_settings.index_prefix}-pipelines", id=doc_id)["_source"]
    assert pipeline["listed_snapshot"] == first["snapshot"]
    again = app_client.get("/v1/pipelines/p-stored/matches", headers=seats.auth(seats.recruiter)).json()
    assert again["computed"] is False and again["candidates"] == first["candidates"]


def test_a_list_still_being_stored_is_served_from_memory(app_client: TestClient, seats: Seats, api_settings):
    app_client.put("/v1/pipelines/p-unstored", json=BACKEND, headers=seats.auth(seats.recruiter))
    deferred: list[tuple] = []
    memory = ListMemory()
    unstored = memory.unstored

    async def work(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        listing = partial(matches.list_matches, es=es, names=names, principal=principal,
                          crm_pipeline_id="p-unstored", today=date.today(), memory=memory,
                          defer=lambda task, **arguments: deferred.append((task, arguments)))
        first = await listing()
        pending = len(unstored)
        again, page_two = await listing(), await listing(page=2, snapshot=first.snapshot)
        for task, arguments in deferred:  # the response's background work, once the page is sent
            await task(**arguments)
        kept = await snapshots.load_snapshot(es=es, names=names, tenant_id=principal.tenant.tenant_id,
                                           crm_pipeline_id="p-unstored", key=first.snapshot)
        return first, pending, again, page_two, kept

    first, pending, again, page_two, kept = run_async(api_settings, work)
    assert first.computed and pending == 1 and len(deferred) == 1
    assert not again.computed and not page_two.computed  # no second ranking while the first is being stored
    assert again.candidates == first.candidates
    assert kept is not None and kept.candidate_ids[25:50] == [c.candidate_id for c in page_two.candidates]
    assert unstored == {}


def test_a_wrong_guess_of_what_the_crm_holds_never_shapes_the_list(app_client: TestClient, seats: Seats,
                                                                    api_settings):
    app_client.put("/v1/pipelines/p-guess", json=BACKEND, headers=seats.auth(seats.recruiter))
    memory = ListMemory()

    async def work(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        truth = await holdings.holdings(es=es, names=names, tenant_id=principal.tenant.tenant_id)
        pipeline = await pipelines.get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id="p-guess")
        plain = await rank.compute_snapshot(es=es, names=names, pipeline=pipeline, day=date.today())
        first = plain.head.candidate_ids[0]
        # The process believes the CRM holds the first candidate (it does not): the list is the same as without.
        memory.held.seen(principal.tenant.tenant_id, holdings.Holdings(
            member_ids=frozenset({first}), profile_urls=frozenset(), synced_at=None))
        guessed = await rank.compute_snapshot(es=es, names=names, pipeline=pipeline, day=date.today(),
                                              held_guess=memory.held)
        return truth, plain, guessed, memory.held.get(principal.tenant.tenant_id)

    truth, plain, guessed, remembered = run_async(api_settings, work)
    assert guessed.head.candidate_ids == plain.head.candidate_ids
    assert remembered is not None and remembered.same_keys(truth)  # the read replaces the guess


def test_a_guess_of_how_a_list_relaxes_never_shapes_it(app_client: TestClient, seats: Seats, api_settings):
    rare = {"title": "Pharmacist", "locations": ["Anchorage, AK"], "skills": ["Epic Systems", "Cerner"],
            "radius_km": 10}
    for crm_id, fields in (("p-relax-rare", rare), ("p-relax-wide", BACKEND)):
        app_client.put(f"/v1/pipelines/{crm_id}", json=fields, headers=seats.auth(seats.recruiter))

    async def work(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        found = {}
        for crm_id in ("p-relax-rare", "p-relax-wide"):
            pipeline = await pipelines.get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=crm_id)
            assert pipeline.listed_relaxation == []  # never listed: no guess
            plain = await rank.compute_snapshot(es=es, names=names, pipeline=pipeline, day=date.today())
            guessed = {}
            for guess in ([], ["wider_radius"], plain.head.relaxation,
                          list(rank.applicable_steps(pipeline.understanding)), ["remote_candidates"]):
                ranked = await rank.compute_snapshot(
                    es=es, names=names, pipeline=pipeline.model_copy(update={"listed_relaxation": guess}),
                    day=date.today())
                guessed[tuple(guess)] = (ranked.head.relaxation, ranked.head.candidate_ids)
            found[crm_id] = plain, guessed
        return found

    found = run_async(api_settings, work)
    # Guessed too little, too much, right, everything, and a level that is not one: the same list every time.
    assert found["p-relax-rare"][0].head.relaxation != found["p-relax-wide"][0].head.relaxation
    for plain, guessed in found.values():
        for guess, listed in guessed.items():
            assert listed == (plain.head.relaxation, plain.head.candidate_ids), guess


def test_a_stored_list_leaves_its_relaxation_on_the_pipeline_for_the_next_ranking(
        app_client: TestClient, seats: Seats, api_settings):
    """Any process that ranks the pipeline next (another worker, after a restart) starts from it."""
    rare = {"title": "Pharmacist", "locations": ["Anchorage, AK"], "skills": ["Epic Systems", "Cerner"],
            "radius_km": 10}
    auth = seats.auth(seats.recruiter)
    app_client.put("/v1/pipelines/p-relax-kept", json=rare, headers=auth).raise_for_status()
    first = app_client.get("/v1/pipelines/p-relax-kept/matches", headers=auth).json()
    # A new version (a wider radius) keeps the last list's relaxation until its own list is stored.
    app_client.put("/v1/pipelines/p-relax-kept", json={**rare, "radius_km": 11}, headers=auth).raise_for_status()

    async def read(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        return await pipelines.get_pipeline(es=es, names=names, principal=principal, crm_pipeline_id="p-relax-kept")

    carried = run_async(api_settings, read)
    second = app_client.get("/v1/pipelines/p-relax-kept/matches", headers=auth).json()
    assert first["relaxation"] and carried.version == first["pipeline_version"] + 1
    assert carried.listed_relaxation == first["relaxation"]
    assert second["computed"] and second["pipeline_version"] == carried.version
    assert run_async(api_settings, read).listed_relaxation == second["relaxation"]


def test_relaxation_is_reported_when_few_candidates_qualify(app_client: TestClient, seats: Seats):
    rare = {"title": "Pharmacist", "locations": ["Anchorage, AK"], "skills": ["Epic Systems", "Cerner"],
            "radius_km": 10}
    app_client.put("/v1/pipelines/p-rare", json=rare, headers=seats.auth(seats.recruiter))
    listing = app_client.get("/v1/pipelines/p-rare/matches", headers=seats.auth(seats.recruiter)).json()
    assert listing["relaxation"], "a rare pipeline must relax"
    assert listing["total"] > 0


def test_unresolved_location_is_reported_not_ignored(app_client: TestClient, seats: Seats):
    odd = {**BACKEND, "locations": ["Qwxyzzy Flats"], "remote_ok": False}
    stored = app_client.put("/v1/pipelines/p-odd", json=odd, headers=seats.auth(seats.recruiter)).json()
    assert stored["unresolved_locations"] == ["Qwxyzzy Flats"]
    listing = app_client.get("/v1/pipelines/p-odd/matches", headers=seats.auth(seats.recruiter)).json()
    assert listing["unresolved_locations"] == ["Qwxyzzy Flats"]


def test_explain_returns_the_exact_search_body(app_client: TestClient, seats: Seats, es, api_settings):
    app_client.put("/v1/pipelines/p-explain", json=BACKEND, headers=seats.auth(seats.recruiter))
    listing = app_client.get("/v1/pipelines/p-explain/matches?explain=true&page_size=125",
                             headers=seats.auth(seats.recruiter)).json()
    body = listing["query"]
    assert "function_score" in str(body)
    raw = es.search(index=f"{api_settings.index_prefix}-candidates", body=body)
    assert [hit["_id"] for hit in raw["hits"]["hits"]][:10] == [c["candidate_id"] for c in listing["candidates"]][:10]
    plain = app_client.get("/v1/pipelines/p-explain/matches", headers=seats.auth(seats.recruiter)).json()
    assert plain["query"] is None


@pytest.mark.parametrize(("fields", "relax"), [
    ({"title": "Sales Associate", "locations": ["Manhattan, NY"], "skills": ["Microsoft Excel"], "radius_km": 15},
     ["title_words"]),
    ({"title": "Accountant", "locations": ["Dallas, TX", "United Kingdom"], "skills": ["Microsoft Office"],
      "radius_km": 30, "remote_ok": True}, ["fewer_skills", "title_words"]),
])
def test_an_unwidened_list_ranks_as_if_proximity_were_scored(candidate_pool, es, api_settings, fields: dict,
                                                              relax: list):
    """Before a radius widens, everyone who qualifies has proximity 1, so the search leaves it out: same hits, same
    scores. Widened, it is scored and moves the ones beyond the radius down."""
    understanding = understand(pipeline=PipelineIn(**fields), taxonomy=get_taxonomy())
    index = f"{api_settings.index_prefix}-candidates"

    def hits(body: dict) -> list[tuple[str, float]]:
        return [(hit["_id"], hit["_score"]) for hit in es.search(index=index, body=body)["hits"]["hits"]]

    widened = build_query(understanding=understanding, relax=["wider_radius", *relax])
    proximity = widened["query"]["function_score"]["query"]["function_score"]  # the decay keeps the radius

    def with_proximity(body: dict) -> dict:
        body = copy.deepcopy(body)
        ranking = body["query"]["function_score"]
        ranking["query"] = {"function_score": {**proximity, "query": ranking["query"]}}
        return body

    def without_proximity(body: dict) -> dict:
        body = copy.deepcopy(body)
        ranking = body["query"]["function_score"]
        ranking["query"] = ranking["query"]["function_score"]["query"]
        return body

    strict = build_query(understanding=understanding, relax=relax)
    assert "function_score" not in strict["query"]["function_score"]["query"]
    listed = hits(strict)
    assert len(listed) >= 10 and listed == hits(with_proximity(strict))
    assert hits(widened) != hits(without_proximity(widened))


@pytest.mark.parametrize("relax", [[], ["related_titles", "fewer_skills", "title_words"]])
def test_occupations_grouped_by_weight_rank_and_read_as_one_clause_per_occupation(candidate_pool, es, api_settings,
                                                                                    relax: list):
    """The current title's occupations are one unnamed clause per weight: the same hits and scores as one named
    clause per occupation, and the occupations a hit's _source lists are those such clauses match."""
    fields = {"title": "Account Manager", "skills": ["Salesforce"]}
    understanding = understand(pipeline=PipelineIn(**fields), taxonomy=get_taxonomy())
    index = f"{api_settings.index_prefix}-candidates"
    grouped = build_query(understanding=understanding, relax=relax)
    ranking = grouped["query"]["function_score"]["query"]
    should = (ranking.get("function_score", {}).get("query") or ranking)["bool"]["should"]
    (occupations,) = [clause["dis_max"] for clause in should if "dis_max" in clause and "occupation_codes" in
                      clause["dis_max"]["queries"][0]["constant_score"]["filter"].get("terms", {})]
    codes = {code for clause in occupations["queries"]
             for code in clause["constant_score"]["filter"]["terms"]["occupation_codes"]}
    assert len(occupations["queries"]) < len(codes)

    per_occupation = copy.deepcopy(grouped)
    ranking = per_occupation["query"]["function_score"]["query"]
    for clause in (ranking.get("function_score", {}).get("query") or ranking)["bool"]["should"]:
        if clause.get("dis_max", {}).get("queries") == occupations["queries"]:
            clause["dis_max"]["queries"] = [
                {"constant_score": {"filter": {"term": {"occupation_codes": code}}, "boost": weighted["boost"],
                                    "_name": f"occupation:{code}"}}
                for weighted in (query["constant_score"] for query in occupations["queries"])
                for code in weighted["filter"]["terms"]["occupation_codes"]]
    one_each = es.search(index=index, body=per_occupation)["hits"]["hits"]
    assert len(one_each) >= 10
    assert [(hit["_id"], hit["_score"]) for hit in es.search(index=index, body=grouped)["hits"]["hits"]] == [
        (hit["_id"], hit["_score"]) for hit in one_each]
    for hit in one_each:
        matched = {name.removeprefix("occupation:") for name in hit.get("matched_queries", ())
                   if name.startswith("occupation:")}
        assert matched == set(hit["_source"]["occupation_codes"]) & codes


def test_a_weak_title_lets_in_who_shares_only_a_skill_once_relaxed_to_title_words(candidate_pool, es, api_settings):
    """A weakly read title qualifies by any of its words or occupation readings; one common skill alone (which
    would let in nearly everyone) qualifies only at title_words, and Wording marks who owes their place to it."""
    understanding = understand(pipeline=PipelineIn(title="Associate Chemist", skills=["Microsoft Excel"]),
                               taxonomy=get_taxonomy())
    assert understanding.weak_title and "title_words" in applicable_steps(understanding)
    index = f"{api_settings.index_prefix}-candidates"
    wording = Wording(understanding)

    def listed(relax: list) -> tuple[int, list[dict]]:
        body = build_query(understanding=understanding, relax=relax, size=MAX_SIZE)
        counted = es.count(index=index, query=body["query"])["count"]
        return counted, es.search(index=index, body=body)["hits"]["hits"]

    strict_count, strict = listed([])
    relaxed_count, relaxed = listed(["title_words"])
    assert 0 < strict_count < relaxed_count
    assert not [hit for hit in strict if "title_words" in wording.describe(hit).relaxed]
    only_skill = [hit for hit in relaxed if "title_words" in wording.describe(hit).relaxed]
    assert len(only_skill) == relaxed_count - strict_count
    assert all("microsoft excel" in hit["_source"]["skills"] for hit in only_skill)


def test_erased_candidate_disappears_from_the_list_at_once(app_client: TestClient, seats: Seats, operator_key: str):
    app_client.put("/v1/pipelines/p-erase", json=BACKEND, headers=seats.auth(seats.recruiter))
    first = app_client.get("/v1/pipelines/p-erase/matches", headers=seats.auth(seats.recruiter)).json()
    victim = first["candidates"][0]["candidate_id"]
    assert app_client.delete(f"/v1/admin/candidates/{victim}", headers=seats.auth(operator_key)).status_code == 204
    again = app_client.get("/v1/pipelines/p-erase/matches", params={"snapshot": first["snapshot"]},
                           headers=seats.auth(seats.recruiter)).json()
    assert victim not in [c["candidate_id"] for c in again["candidates"]]
    assert again["candidates"][0]["rank"] == 1


def test_a_page_reads_past_candidates_erased_before_it(app_client: TestClient, seats: Seats, api_settings):
    # A page reads its candidates' fields for its window and ERASED_MARGIN more; with more gone before it than that,
    # it reads the rest and is still whole, in order. Ids that were never indexed stand for erased candidates, so
    # nothing is deleted from the shared pool.
    app_client.put("/v1/pipelines/p-erased-many", json=BACKEND, headers=seats.auth(seats.recruiter))
    first = app_client.get("/v1/pipelines/p-erased-many/matches", headers=seats.auth(seats.recruiter)).json()
    gone = matches.ERASED_MARGIN + 5

    async def work(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        tenant_id = principal.tenant.tenant_id
        kept = await snapshots.load_snapshot(es=es, names=names, tenant_id=tenant_id,
                                             crm_pipeline_id="p-erased-many", key=first["snapshot"])
        erased = [kept.entries[0].model_copy(update={"candidate_id": f"erased-{n}"}) for n in range(gone)]
        holey = kept.model_copy(update={"entries": [*erased[:3], kept.entries[0], *erased[3:], *kept.entries[1:]],
                                        "candidate_ids": [*(e.candidate_id for e in erased[:3]), kept.candidate_ids[0],
                                                          *(e.candidate_id for e in erased[3:]),
                                                          *kept.candidate_ids[1:]]})
        return [await matches._still_listed(es=es, names=names, snapshot=snapshot, tenant_id=tenant_id,
                                            window=window)
                for snapshot in (kept, holey) for window in (slice(0, 25), slice(25, 50))]

    whole_one, whole_two, holey_one, holey_two = run_async(api_settings, work)
    assert holey_one[0] == whole_one[0] == first["total"]
    for whole, holey in ((whole_one, holey_one), (whole_two, holey_two)):
        assert [c.model_dump() for c in holey[1]] == [c.model_dump() for c in whole[1]]
    assert [c.rank for c in holey_two[1]] == list(range(26, 26 + len(holey_two[1])))
    assert [c["candidate_id"] for c in first["candidates"]] == [c.candidate_id for c in whole_one[1]]


def test_batch_sync_answers_each_pipeline(app_client: TestClient, seats: Seats):
    batch = {"pipelines": [{**BACKEND, "crm_pipeline_id": "p-b1"},
                           {**BACKEND, "crm_pipeline_id": "p-b2", "title": "Nurse"}]}
    results = app_client.post("/v1/pipelines:batch", json=batch, headers=seats.auth(seats.recruiter)).json()["results"]
    assert [(r["crm_pipeline_id"], r["status"]) for r in results] == [("p-b1", "created"), ("p-b2", "created")]
    results = app_client.post("/v1/pipelines:batch", json=batch, headers=seats.auth(seats.recruiter)).json()["results"]
    assert [r["status"] for r in results] == ["updated", "updated"]


def test_elasticsearch_down_gives_503_with_retry_after(api_settings):
    dead = api_settings.model_copy(update={"es_url": "http://127.0.0.1:9", "es_max_retries": 0})
    with TestClient(create_app(dead)) as client:
        response = client.get("/v1/integration", headers=Seats.auth("rm_some-tenant_secret"))
        assert response.status_code == 503
        assert response.json()["type"] == "SearchUnavailable"
        assert int(response.headers["Retry-After"]) > 0
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_openapi_documents_limits_and_examples(app_client: TestClient):
    schema = app_client.get("/openapi.json").json()
    pipeline = schema["components"]["schemas"]["PipelineIn"]
    assert pipeline["properties"]["title"]["maxLength"] == 200
    assert pipeline["properties"]["locations"]["maxItems"] == 10
    assert pipeline["examples"]


def test_api_is_not_ready_until_its_indices_are_prepared(api_settings, es, es_url):
    """Started while Elasticsearch is unreachable the API serves 503s and is not ready; with it, it prepares."""
    late = api_settings.model_copy(update={"es_url": "http://127.0.0.1:9", "es_max_retries": 0,
                                           "index_prefix": f"{api_settings.index_prefix}-late"})
    with TestClient(create_app(late)) as client:
        assert client.get("/readyz").status_code == 503
        assert client.app.state.cluster_prepared is False
    with TestClient(create_app(late.model_copy(update={"es_url": es_url}))) as client:
        assert client.get("/readyz").status_code == 200
        assert es.indices.exists(index=f"{late.index_prefix}-accounts")


def test_daily_refresh_computes_tomorrows_list_of_pipelines_in_use(app_client: TestClient, seats: Seats, moving_day,
                                                                   api_settings):
    for pipeline in ("p-in-use", "p-idle"):
        app_client.put(f"/v1/pipelines/{pipeline}", json=BACKEND, headers=seats.auth(seats.recruiter))
    app_client.get("/v1/pipelines/p-in-use/matches", headers=seats.auth(seats.recruiter))
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)

    async def refresh_and_look(es, names):
        computed, _ = await refresh.refresh_active(es=es, names=names, today=tomorrow)
        found = {}
        for pipeline in ("p-in-use", "p-idle"):
            stored = await pipelines.get_pipeline(es=es, names=names, crm_pipeline_id=pipeline, principal=(
                await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)))
            found[pipeline] = await snapshots.load_snapshot(es=es, names=names, tenant_id=seats.tenant.tenant_id,
                                                          crm_pipeline_id=pipeline,
                                                          key=snapshots.snapshot_key(stored, tomorrow))
        return computed, found

    computed, found = run_async(api_settings, refresh_and_look)
    assert computed >= 1 and found["p-in-use"] is not None and found["p-idle"] is None
    moving_day(tomorrow)
    listing = app_client.get("/v1/pipelines/p-in-use/matches", headers=seats.auth(seats.recruiter)).json()
    assert listing["computed"] is False and listing["snapshot"] == found["p-in-use"].snapshot


def test_a_list_started_early_is_kept_only_for_the_pipeline_as_it_is(app_client: TestClient, seats: Seats,
                                                                      api_settings):
    """A process that synced a pipeline starts ranking it while it reads it back; a change made meanwhile by
    another process wins."""
    memory = ListMemory()
    recent = memory.recent

    async def sync_here(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        for pipeline_id in ("p-guess-kept", "p-guess-dropped"):
            await pipelines.put_pipeline(es=es, names=names, principal=principal, crm_pipeline_id=pipeline_id,
                                         pipeline=PipelineIn(**BACKEND), taxonomy=get_taxonomy(), recent=recent)

    run_async(api_settings, sync_here)
    nurse = {**BACKEND, "title": "Registered Nurse", "skills": []}
    app_client.put("/v1/pipelines/p-guess-dropped", json=nurse, headers=seats.auth(seats.recruiter))  # elsewhere

    async def list_here(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        return [await matches.list_matches(es=es, names=names, principal=principal, crm_pipeline_id=pipeline_id,
                                           today=date.today(), memory=memory, explain=True)
                for pipeline_id in ("p-guess-kept", "p-guess-dropped")]

    kept, dropped = run_async(api_settings, list_here)
    assert kept.computed and kept.pipeline_version == 1
    assert "skill:python" in str(kept.query) and any("software" in c.title.lower() for c in kept.candidates[:5])
    assert dropped.computed and dropped.pipeline_version == 2
    assert "skill:python" not in str(dropped.query) and any("nurse" in c.title.lower() for c in dropped.candidates[:5])


def test_a_list_whose_storing_never_ran_is_not_served_from_memory_for_long(app_client: TestClient, seats: Seats,
                                                                          api_settings):
    app_client.put("/v1/pipelines/p-never-stored", json=BACKEND, headers=seats.auth(seats.recruiter))
    memory = ListMemory()
    unstored = memory.unstored

    async def work(es, names):
        principal = await accounts.authenticate(es=es, names=names, api_key=seats.recruiter)
        listing = partial(matches.list_matches, es=es, names=names, principal=principal,
                          crm_pipeline_id="p-never-stored", today=date.today(), memory=memory,
                          defer=lambda task, **arguments: None)  # a response that failed: its tasks never run
        first = await listing()
        soon = await listing()
        (served,) = unstored.values()
        served.head.created_at -= UNSTORED_AT_MOST + timedelta(seconds=1)
        later = await listing()
        return first, soon, later

    first, soon, later = run_async(api_settings, work)
    assert first.computed and not soon.computed
    assert later.computed  # ranked again, so that this time it can be stored


def test_an_unknown_title_gets_a_non_empty_list_labelled_by_its_relaxation(app_client: TestClient, seats: Seats):
    unknown = {"title": "Zorblax Wrangler", "locations": ["Austin, TX"], "skills": ["Microsoft Excel"],
               "radius_km": 80}
    app_client.put("/v1/pipelines/p-unknown", json=unknown, headers=seats.auth(seats.recruiter))
    pages = all_pages(app_client, seats.recruiter, "p-unknown")
    candidates = [c for page in pages for c in page["candidates"]]
    assert candidates, "a title in no taxonomy must still list who shares its words or skills"
    assert pages[0]["relaxation"], "3,000 candidates hold fewer than 125 such people near Austin"
    for candidate in candidates:
        # within reach after widening (500 km at most), or open to remote; never from another continent
        assert candidate["open_to_remote"] or (candidate["distance_km"] or 0) <= 500, candidate
        if candidate["distance_km"] is not None and candidate["distance_km"] > 80 + 1:
            assert "outside_radius" in candidate["relaxed"], candidate
    assert any("outside_radius" in c["relaxed"] for c in candidates)


def test_a_non_remote_pipeline_is_never_padded_from_other_continents(app_client: TestClient, seats: Seats):
    berlin = {"title": "Accountant", "locations": ["Berlin"], "radius_km": 80}
    app_client.put("/v1/pipelines/p-berlin", json=berlin, headers=seats.auth(seats.recruiter))
    candidates = [c for page in all_pages(app_client, seats.recruiter, "p-berlin") for c in page["candidates"]]
    assert all(c["open_to_remote"] or (c["distance_km"] is not None and c["distance_km"] <= 500) for c in candidates)
    assert all(c["location"] is None or "IN" not in c["location"].split(", ")[-1:] or c["open_to_remote"]
               for c in candidates)


def test_a_senior_title_never_lists_juniors_above_equally_matched_seniors(app_client: TestClient, seats: Seats,
                                                                          operator_key: str):
    twin = {"title": "Software Engineer", "skills": ["Zyxlang"], "open_to_remote": True,
            "location": {"name": "Austin, TX, US"}}
    for cid, level in (("c-junior-twin", "junior"), ("c-senior-twin", "senior")):
        upserted = app_client.put(f"/v1/admin/candidates/{cid}", json={**twin, "candidate_id": cid,
                                                                        "name": f"{level} twin", "seniority": level},
                                  headers=seats.auth(operator_key))
        assert upserted.status_code == 200
    senior = {"title": "Senior Software Engineer", "skills": ["Zyxlang"], "locations": ["Remote"]}
    app_client.put("/v1/pipelines/p-senior", json=senior, headers=seats.auth(seats.recruiter))
    listed = {c["candidate_id"]: c["rank"] for page in all_pages(app_client, seats.recruiter, "p-senior")
              for c in page["candidates"]}
    assert listed["c-senior-twin"] < listed["c-junior-twin"]


def test_a_fake_place_comes_back_unresolved(app_client: TestClient, seats: Seats):
    fake = {"title": "Registered Nurse", "locations": ["Atlantis, ZZ"]}
    stored = app_client.put("/v1/pipelines/p-atlantis", json=fake, headers=seats.auth(seats.recruiter)).json()
    assert stored["unresolved_locations"] == ["Atlantis, ZZ"]
    listing = app_client.get("/v1/pipelines/p-atlantis/matches", headers=seats.auth(seats.recruiter)).json()
    assert listing["unresolved_locations"] == ["Atlantis, ZZ"]
    assert listing["total"] > 0
