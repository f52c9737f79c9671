"""The webhook receiver down for a while: deliveries retry, and each arrives exactly once at an idempotent receiver.

The receiver is stopped (its port refuses connections) while deliveries are queued, then a new receiver comes up
on the same port; its first answers are too slow, so the sender times out and sends those again. A receiver that
dedupes by X-Recmatch-Delivery stores every delivery once; the raw duplicates it had to drop are counted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, ensure_indices, make_async_client
from recmatch.webhooks import outbox, signing
from recmatch.webhooks import worker as delivery_worker
from recmatch.webhooks.formats.recmatch import envelope
from tests.faults.support import DeliveryStore, IdempotentReceiver, free_port, port_open
from tests.integration.support import make_tenant

pytestmark = pytest.mark.faults

_prefixes = itertools.count(1)
BEFORE, DURING = 10, 30  # delivered before the receiver goes down; queued while it is down
DOWN_SECONDS = 3.0
SLOW_ANSWERS = 4  # the first answers of the new receiver come after the sender's timeout


@pytest.fixture
def cfg(settings: Settings, es: Elasticsearch) -> Iterator[Settings]:
    """This test's own outbox and accounts; tiny backoffs, a short timeout, tries enough to outlast the outage."""
    test_settings = settings.model_copy(update={
        "index_prefix": f"{settings.index_prefix}-whfault{next(_prefixes)}",
        "delivery_max_attempts": 50, "delivery_backoff_base": 0.05, "delivery_backoff_cap": 0.4,
        "delivery_timeout": 0.5, "delivery_poll_interval": 0.05,
    })
    names = IndexNames(test_settings.index_prefix)
    ensure_indices(es, names, "accounts", "outbox")
    es.indices.put_settings(index=names.accounts, settings={"index": {"refresh_interval": "50ms"}})
    yield test_settings
    es.options(ignore_status=404).indices.delete(index=f"{test_settings.index_prefix}-*", expand_wildcards="all")


def test_receiver_down_for_a_while_gets_every_delivery_exactly_once(cfg: Settings, es: Elasticsearch) -> None:
    port = free_port()
    store = DeliveryStore()
    seats = make_tenant(cfg, webhook_url=f"http://127.0.0.1:{port}/crm",
                        messaging_webhook_url=f"http://127.0.0.1:{port}/messaging")
    store.secret = seats.tenant.webhook_secret.get_secret_value()
    names = IndexNames(cfg.index_prefix)
    ids = [f"d-fault-{n:03d}" for n in range(BEFORE + DURING)]
    figures: dict[str, float | int] = {}

    async def enqueue(es_async, delivery_ids: list[str]) -> None:
        for number, delivery_id in enumerate(delivery_ids):
            await outbox.enqueue(es=es_async, names=names, tenant_id=seats.tenant.tenant_id,
                                   target="crm" if number % 3 else "messaging", event="prospect.saved",
                                   payload={"n": delivery_id}, delivery_id=delivery_id)

    async def wait_for(condition, what: str, timeout: float = 30.0) -> float:
        started = time.monotonic()
        while not condition():
            assert time.monotonic() - started < timeout, f"{what}: not after {timeout:.0f} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def scenario() -> None:
        es_async = make_async_client(cfg)
        receiver = IdempotentReceiver(store, port=port).start()
        try:
            async with delivery_worker.background_worker(es=es_async, names=names, settings=cfg) as worker:
                await enqueue(es_async, ids[:BEFORE])
                await wait_for(lambda: set(ids[:BEFORE]) <= set(store.stored), "the first deliveries")

                receiver.stop()  # down: the port now refuses connections
                assert not port_open(port)
                down_at = time.monotonic()
                await enqueue(es_async, ids[BEFORE:])
                await asyncio.sleep(DOWN_SECONDS)
                # Down for at least DOWN_SECONDS, and until every entry was tried twice (a busy machine is slower).
                await wait_for(
                    lambda: all(entry["attempts"] >= 2 for entry in _outbox(es, names, ids[BEFORE:]).values()),
                    "two tries of every delivery while the receiver is down", timeout=60.0)
                tried = _outbox(es, names, ids[BEFORE:])
                figures["tries_while_down"] = sum(entry["attempts"] for entry in tried.values())
                assert all(entry["attempts"] >= 2 and entry["status"] != "delivered" for entry in tried.values()), tried
                assert "could not connect" in next(iter(tried.values()))["last_error"]

                receiver = IdempotentReceiver(store, port=port, slow=SLOW_ANSWERS, slow_seconds=1.5).start()
                figures["caught_up_after_back_s"] = round(await wait_for(
                    lambda: set(ids) <= set(store.stored), "every delivery stored after the receiver came back"), 2)
                figures["down_s"] = round(time.monotonic() - down_at, 1)
                # Let the resends of the slow answers land before counting.
                await wait_for(lambda: all(e["status"] == "delivered" for e in _outbox(es, names, ids).values()),
                               "every outbox entry marked delivered")
                assert not worker.done()
        finally:
            receiver.stop()
            await es_async.close()

    asyncio.run(scenario())

    entries = _outbox(es, names, ids)
    assert {entry["status"] for entry in entries.values()} == {"delivered"}
    assert set(store.stored) == set(ids) and len(store.stored) == len(ids)  # each id stored exactly once
    assert all(store.stored[delivery_id]["id"] == delivery_id for delivery_id in ids)
    assert store.bad_signatures == 0
    # Only sends the sender gave up on (the slow answers) come back: each is resent, and the receiver drops it.
    figures.update(deliveries=len(ids), raw_requests=sum(store.raw.values()), raw_duplicates=store.duplicates,
                   max_attempts=max(entry["attempts"] for entry in entries.values()))
    # At least the slow answers were resent (and dropped by the receiver, above). How many more sends time out
    # depends on how busy the machine is, so there is no upper bound here.
    assert store.duplicates >= SLOW_ANSWERS, figures
    print(f"\nwebhook outage figures: {figures}")


def _outbox(es: Elasticsearch, names: IndexNames, ids: list[str]) -> dict[str, dict]:
    docs = es.mget(index=names.outbox, ids=ids)["docs"]
    return {doc["_id"]: doc["_source"] for doc in docs if doc.get("found")}


def test_receiver_store_dedupes_a_resend_of_the_same_body() -> None:
    """The receiver used above: one id, two requests → stored once, one duplicate counted."""
    store = DeliveryStore(secret="s3cret")
    body = envelope(delivery_id="d-1", event="prospect.saved", created_at="2026-01-01T00:00:00Z",
                             tenant_id="t-1", payload={})
    signature = signing.sign("s3cret", body, int(time.time()))
    assert store.accept("d-1", body, signature) and store.accept("d-1", body, signature)
    assert not store.accept("d-2", body, "t=1,v1=bad")
    assert (len(store.stored), store.duplicates, store.bad_signatures) == (1, 1, 1)
