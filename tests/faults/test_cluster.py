"""A 3-node cluster of our own (tests/faults/conftest.py) losing a node: a data node or the master under traffic, a
node in the middle of a reindex.

The API and the reindex get every node in RECMATCH_ES_URL (the client's node pool fails over) and one replica of
every index, so a node killed with SIGKILL costs no request beyond the client's own retries and nothing accepted.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, make_client
from recmatch.core.ids import pipeline_doc_id
from recmatch.indexing import reindex as indexing
from recmatch.ops.cluster import prepare_cluster
from recmatch.ops.localnode import LocalNode
from tests.faults.conftest import FaultCluster
from tests.faults.support import (
    DeliveryStore,
    IdempotentReceiver,
    free_port,
    recmatch_env,
    served_api,
    wait_until,
    write_candidates,
)
from tests.faults.test_elasticsearch_outage import PIPELINE, PIPELINE_ID, POOL, Traffic
from tests.integration.support import Seats, make_tenant

pytestmark = pytest.mark.faults

ACTIONS_BEFORE_KILL = 8
ACTIONS_AFTER_KILL = 16
REINDEX_DOCS = 10_000


@pytest.fixture(scope="module")
def cluster_setup(fault_cluster: FaultCluster, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[FaultCluster, Seats, IdempotentReceiver]]:
    """The pool (one replica), a tenant whose webhooks reach a local receiver."""
    settings = fault_cluster.settings
    es = make_client(settings)
    try:
        prepare_cluster(settings)
        source = write_candidates(tmp_path_factory.mktemp("pool") / "pool.jsonl", POOL)
        indexing.reindex(es=es, settings=settings, source=source, rejects_path=Path("/dev/null"))
    finally:
        es.close()
    receiver = IdempotentReceiver(DeliveryStore(), port=free_port()).start()
    seats = make_tenant(settings, webhook_url=f"{receiver.url}/crm", messaging_webhook_url=f"{receiver.url}/messaging")
    receiver.store.secret = seats.tenant.webhook_secret.get_secret_value()
    yield fault_cluster, seats, receiver
    receiver.stop()


def _client(settings: Settings, *, without: LocalNode | None = None) -> Elasticsearch:
    hosts = [host for host in settings.es_hosts if without is None or host != without.url]
    return make_client(settings.model_copy(update={"es_url": ",".join(hosts)}))


def _master(es: Elasticsearch) -> str:
    return es.cat.master(format="json", h="node")[0]["node"]


def _answered_master(es: Elasticsearch) -> str | None:
    """The master the surviving nodes name, None while they have none (an election going on)."""
    try:
        return _master(es.options(request_timeout=2, max_retries=0))
    except Exception:  # noqa: BLE001 - no master yet answers 503 (or times out): keep asking
        return None


def _data_node_not_master(cluster: FaultCluster) -> LocalNode:
    """The node holding the most primaries of our indices that is not the elected master."""
    es = _client(cluster.settings)
    try:
        master = _master(es)
        shards = es.cat.shards(index=f"{cluster.settings.index_prefix}-*", format="json", h="prirep,node")
    finally:
        es.close()
    primaries = Counter(shard["node"] for shard in shards if shard["prirep"] == "p")
    name = max((node.name for node in cluster.nodes if node.name != master), key=lambda n: primaries[n])
    return cluster.node_named(name)


def _elected_master(cluster: FaultCluster) -> LocalNode:
    es = _client(cluster.settings)
    try:
        return cluster.node_named(_master(es))
    finally:
        es.close()


def _kill_under_traffic(cluster_setup: tuple[FaultCluster, Seats, IdempotentReceiver], tmp_path: Path,
                        choose: Callable[[FaultCluster], LocalNode]) -> dict[str, Any]:
    """Lists, pages and actions through a served API; one node SIGKILLed mid-way; every answer must be a 2xx."""
    cluster, seats, receiver = cluster_setup
    cluster.heal()
    settings = cluster.settings
    figures: dict[str, Any] = {}
    crm_id = f"{PIPELINE_ID}-{uuid.uuid4().hex[:6]}"
    with served_api(settings, tmp_path, RECMATCH_DELIVERY_POLL_INTERVAL="0.2",
                    RECMATCH_CANDIDATES_REPLICAS="1") as api:
        probe = httpx.Client(base_url=api.url, headers=seats.auth(seats.recruiter), timeout=60)
        assert probe.put(f"/v1/pipelines/{crm_id}", json=PIPELINE).status_code == 201
        traffic = Traffic(api.url, seats.auth(seats.recruiter), pipeline_id=crm_id, key_prefix=crm_id)
        traffic.start()
        try:
            wait_until(lambda: len(traffic.accepted_actions()) >= ACTIONS_BEFORE_KILL, timeout=90,
                       what=f"{ACTIONS_BEFORE_KILL} actions accepted")
            victim = choose(cluster)
            figures["killed"] = victim.name
            killed_at = time.monotonic()
            victim.kill()
            survivors = _client(settings, without=victim)
            try:
                figures["master_after_s"] = round(wait_until(
                    lambda: _answered_master(survivors) not in (None, victim.name), timeout=60, every=0.1,
                    what="a master other than the killed node"), 2)
                figures["survivor_master"] = _master(survivors)
            finally:
                survivors.close()
            wait_until(lambda: len(traffic.accepted_actions(since=killed_at)) >= ACTIONS_AFTER_KILL, timeout=120,
                       what=f"{ACTIONS_AFTER_KILL} actions accepted after the kill")
        finally:
            traffic.stop.set()
            traffic.join(timeout=120)
        calls = traffic.snapshot()
        failed = [c for c in calls if c.status is None or c.status >= 300]
        accepted = {c.key: c for c in calls if c.action and c.status is not None and c.status < 300}
        api_log = api.log_text()
        figures.update(requests=len(calls), after_kill=sum(c.at >= killed_at for c in calls),
                       client_retries=api_log.count("Retrying request"), failed=len(failed))
        assert not failed, [(round(c.at - killed_at, 2), c.method, c.path, c.status, c.text[:200]) for c in failed[:8]]
        lost = _lost_actions(settings, seats, crm_id, accepted, receiver, without=victim)
        figures.update(accepted_actions=len(accepted), lost=len(lost),
                       delivery_raw_duplicates=receiver.store.duplicates)
        assert not lost, lost
        traffic.client.close()
        probe.close()
    assert "unhandled error" not in api_log
    return figures


def _lost_actions(settings: Settings, seats: Seats, crm_id: str, accepted: dict[str, Any],
                  receiver: IdempotentReceiver, *, without: LocalNode) -> list[str]:
    """What of the accepted actions is missing or doubled: state, event, learning, outbox entry, delivery."""
    names = IndexNames(settings.index_prefix)
    tenant_id = seats.tenant.tenant_id
    es = _client(settings, without=without)
    lost: list[str] = []
    deliveries: set[str] = set()
    try:
        es.indices.refresh(index=names.events)
        pipeline = es.get(index=names.pipelines, id=pipeline_doc_id(tenant_id, crm_id))["_source"]
        acted = Counter(pipeline.get("acted_candidate_ids", []))
        for call in accepted.values():
            answer = httpx.Response(200, text=call.text).json()
            what = f"{call.action} of {call.candidate_id}"
            state = es.options(ignore_status=404).get(index=names.actions,
                                                      id=f"{tenant_id}:{crm_id}:{call.candidate_id}")
            if not state.get("found") or state["_source"]["status"] != answer["status"]:
                lost.append(f"{what}: state {state.get('_source')}")
            events = es.count(index=names.events, query={"bool": {"filter": [
                {"term": {"tenant_id": tenant_id}}, {"term": {"crm_pipeline_id": crm_id}},
                {"term": {"candidate_id": call.candidate_id}}, {"term": {"action": call.action}}]}})["count"]
            if events != 1:
                lost.append(f"{what}: {events} events")
            if acted[call.candidate_id] != 1:
                lost.append(f"{what}: learned {acted[call.candidate_id]} times")
            if answer["delivery_id"]:
                if not es.options(ignore_status=404).get(index=names.outbox, id=answer["delivery_id"]).get(
                        "found"):
                    lost.append(f"{what}: no outbox entry")
                deliveries.add(answer["delivery_id"])
            elif call.action != "dismiss":
                lost.append(f"{what}: no delivery queued")
        if len(accepted) and pipeline["learning_version"] < len(accepted):
            lost.append(f"learning_version {pipeline['learning_version']} < {len(accepted)} accepted actions")
    finally:
        es.close()
    # The API's own delivery worker sends every one; the receiver keeps each once.
    try:
        wait_until(lambda: deliveries <= set(receiver.store.stored), timeout=90, every=0.25,
                   what=f"{len(deliveries)} deliveries reach the receiver")
    except AssertionError:
        lost += [f"delivery {d} never arrived" for d in sorted(deliveries - set(receiver.store.stored))]
    return lost


def test_data_node_killed_under_traffic_fails_no_request_and_loses_no_action(
    cluster_setup: tuple[FaultCluster, Seats, IdempotentReceiver], tmp_path: Path
) -> None:
    figures = _kill_under_traffic(cluster_setup, tmp_path, _data_node_not_master)
    assert figures["survivor_master"] != figures["killed"]
    print(f"\ndata node killed under traffic: {figures}")


def test_master_killed_under_traffic_a_new_one_is_elected_and_the_api_goes_on(
    cluster_setup: tuple[FaultCluster, Seats, IdempotentReceiver], tmp_path: Path
) -> None:
    figures = _kill_under_traffic(cluster_setup, tmp_path, _elected_master)
    assert figures["survivor_master"] != figures["killed"], figures
    print(f"\nmaster killed under traffic: {figures}")


def _run_reindex(settings: Settings, source: Path, workdir: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "recmatch", "reindex", "--source", str(source), "--rejects",
         str(workdir / "rejects.jsonl")],
        env=recmatch_env(settings, RECMATCH_CANDIDATES_REPLICAS="1", **env), cwd=workdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_node_killed_mid_reindex_keeps_the_alias_on_the_old_index_and_the_next_run_completes(
    cluster_setup: tuple[FaultCluster, Seats, IdempotentReceiver], tmp_path: Path
) -> None:
    cluster = cluster_setup[0]
    cluster.heal()
    settings = cluster.settings.model_copy(update={"index_prefix": f"{cluster.settings.index_prefix}-rx"})
    names = IndexNames(settings.index_prefix)
    first = _run_reindex(settings, write_candidates(tmp_path / "first.jsonl", 40), tmp_path)
    assert first.wait(timeout=180) == 0, first.stderr.read().decode(errors="replace")[-2000:]
    es = _client(settings)
    served = indexing.alias_target(es, names)
    before = {name for name, _ in indexing.candidate_indices(es, names)}

    def building() -> str | None:
        new = [name for name, _ in indexing.candidate_indices(es, names) if name not in before]
        return new[-1] if new else None

    def written() -> int:
        index = building()
        stats = es.options(ignore_status=404).indices.stats(index=index, metric="indexing") if index else {}
        return int(stats.get("_all", {}).get("primaries", {}).get("indexing", {}).get("index_total", 0))

    big = write_candidates(tmp_path / "big.jsonl", REINDEX_DOCS)
    started = time.monotonic()
    process = _run_reindex(settings, big, tmp_path, RECMATCH_REINDEX_CHUNK_DOCS="250", RECMATCH_REINDEX_THREADS="1",
                           RECMATCH_REINDEX_SHARD_WAIT_S="5")
    wait_until(lambda: process.poll() is not None or written() >= REINDEX_DOCS // 4, timeout=120,
               what="a quarter of the reindex written")
    assert process.poll() is None, "the reindex ended before a node could be killed"
    index = building()
    holder = es.cat.shards(index=index, format="json", h="prirep,node")
    victim = cluster.node_named(next(shard["node"] for shard in holder if shard["prirep"] == "p"))
    at_kill = written()
    victim.kill()
    es.close()
    es = _client(settings, without=victim)
    try:
        code = process.wait(timeout=180)
        error = process.stderr.read().decode(errors="replace")
        # The building index had its only copy on the node: the run fails, says why, and leaves the alias alone.
        assert code != 0, "the reindex swapped an index that lost its shard"
        assert "the alias was not touched" in error, error[-2000:]
        assert indexing.alias_target(es, names) == served
        assert es.count(index=names.candidates)["count"] == 40
        assert es.search(index=names.candidates, query={"term": {"candidate_id": "c-000000"}})["hits"]["hits"]

        # The next run (two nodes left) takes over and completes, replicas and all.
        again = _run_reindex(settings, big, tmp_path)  # the dead node still named: the pool skips it
        assert again.wait(timeout=300) == 0, again.stderr.read().decode(errors="replace")[-2000:]
        assert indexing.alias_target(es, names) != served
        assert es.count(index=names.candidates)["count"] == REINDEX_DOCS
        assert set(dict(indexing.candidate_indices(es, names)).values()) == {"complete"}
        figures = {"killed": victim.name, "written_at_kill": at_kill, "failed_run_s": round(
            time.monotonic() - started, 1), "error": next((line for line in reversed(error.splitlines())
                                                if "not touched" in line or "Error" in line), "")[:300]}
    finally:
        es.close()
    print(f"\nnode killed mid-reindex: {figures}")
