"""The delivery worker: claims due outbox entries, sends them in the tenant's webhook format, records the result.

Claims use Elasticsearch optimistic concurrency (if_seq_no/if_primary_term), so two workers never send one entry
at the same time; an entry whose worker died is due again once its claim expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import elasticsearch
import httpx
from elasticsearch import AsyncElasticsearch

from recmatch.accounts import service as accounts
from recmatch.core import egress
from recmatch.core.config import Settings
from recmatch.core.errors import NotFound, RecmatchError
from recmatch.core.es import IndexNames, map_es_errors
from recmatch.webhooks.formats import OutboxMessage, webhook_format
from recmatch.webhooks.outbox import iso, unclaimed, utc_now
from recmatch.webhooks.signing import backoff_seconds

log = logging.getLogger("recmatch.delivery")

USER_AGENT = "recmatch-webhooks/1"
# A claim outlives one send (bounded by delivery_timeout) by this much; after it, another worker may take the entry.
CLAIM_MARGIN_S = 30.0
SEND_CONCURRENCY = 10


class Outcome(StrEnum):
    delivered = "delivered"
    retrying = "retrying"
    dead = "dead"
    skipped = "skipped"  # another worker claimed it first


@dataclass
class DeliveryRound:
    """What one round of a worker did."""

    due: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    skipped: int = 0
    errors: int = 0

    @property
    def claimed(self) -> int:
        return self.delivered + self.retrying + self.dead

    def describe(self) -> str:
        return (f"{self.due} due: {self.delivered} delivered, {self.retrying} to retry, {self.dead} dead, "
                f"{self.skipped} taken by another worker, {self.errors} errors")


@dataclass(frozen=True)
class _Sent:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False  # retrying cannot help (no URL, a malformed URL): dead now


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def make_http_client() -> httpx.AsyncClient:
    """The client webhooks go out with: no redirects followed (a 3xx is a failure), timeouts set per request."""
    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})


def _due_query(now: str) -> dict[str, Any]:
    return {"bool": {"minimum_should_match": 1, "should": [
        {"bool": {"filter": [{"term": {"status": "pending"}}, {"range": {"next_attempt_at": {"lte": now}}}]}},
        # A worker that died mid-send leaves its claim behind; once the claim expires the entry is due again.
        {"bool": {"filter": [{"term": {"status": "delivering"}}, {"range": {"claimed_until": {"lt": now}}}]}},
    ]}}


async def deliver_due(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    settings: Settings,
    worker_id: str,
    http: httpx.AsyncClient,
    limit: int = 50,
) -> DeliveryRound:
    """Claim and send up to `limit` due deliveries, recording each result."""
    index = names.outbox
    now = iso(utc_now())
    with map_es_errors("looking for due deliveries"):
        # Search is near-realtime. A refresh per round (about one a second per worker; a no-op when nothing was
        # written) makes entries visible as soon as they are enqueued, and lets `deliver --once` see everything.
        # Correctness does not depend on it: a stale hit fails its claim on if_seq_no and is skipped.
        await es.indices.refresh(index=index)
        found = await es.search(index=index, query=_due_query(now), size=limit, seq_no_primary_term=True,
                                sort=[{"next_attempt_at": "asc"}, {"delivery_id": "asc"}])
    hits = found["hits"]["hits"]
    result = DeliveryRound(due=len(hits))
    tenants: dict[str, accounts.Tenant | None] = {}
    slots = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one(hit: dict[str, Any]) -> Outcome:
        async with slots:
            return await _deliver_one(es=es, names=names, settings=settings, worker_id=worker_id, http=http,
                                      hit=hit, tenants=tenants)

    outcomes = await asyncio.gather(*(one(hit) for hit in hits), return_exceptions=True)
    for hit, outcome in zip(hits, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            result.errors += 1
            log.warning("delivery %s: %s", hit["_id"], _describe_error(outcome))
        else:
            setattr(result, outcome.value, getattr(result, outcome.value) + 1)
    return result


def _describe_error(exc: Exception) -> str:
    return exc.detail if isinstance(exc, RecmatchError) else f"{type(exc).__name__}: {exc}"


async def _write(es: AsyncElasticsearch, names: IndexNames, hit_id: str, guard: tuple[int, int],
                 changes: dict[str, Any]) -> dict[str, Any] | None:
    """Change an entry only if nobody changed it since `guard` (seq_no, primary_term); None if somebody did."""
    with map_es_errors("updating a delivery"):
        try:
            return await es.update(index=names.outbox, id=hit_id, doc=changes,
                                   if_seq_no=guard[0], if_primary_term=guard[1])
        except elasticsearch.ConflictError:
            return None


async def _tenant(es: AsyncElasticsearch, names: IndexNames, tenant_id: str,
                  tenants: dict[str, accounts.Tenant | None]) -> accounts.Tenant | None:
    if tenant_id not in tenants:
        try:
            tenants[tenant_id] = await accounts.get_tenant(es=es, names=names, tenant_id=tenant_id)
        except NotFound:
            tenants[tenant_id] = None
    return tenants[tenant_id]


async def _deliver_one(
    *, es: AsyncElasticsearch, names: IndexNames, settings: Settings, worker_id: str, http: httpx.AsyncClient,
    hit: dict[str, Any], tenants: dict[str, accounts.Tenant | None],
) -> Outcome:
    entry = hit["_source"]
    now = utc_now()
    guard = (hit["_seq_no"], hit["_primary_term"])
    if entry["status"] == "delivering" and entry["attempts"] >= settings.delivery_max_attempts:
        error = (f"the worker {entry.get('claimed_by')} stopped while sending try {entry['attempts']} "
                 "and no tries are left")
        written = await _write(es, names, hit["_id"], guard, _dead(now, error))
        return Outcome.dead if written else Outcome.skipped

    attempts = entry["attempts"] + 1
    claim = await _write(es, names, hit["_id"], guard, {
        "status": "delivering", "claimed_by": worker_id, "attempts": attempts,
        "claimed_until": iso(now + timedelta(seconds=settings.delivery_timeout + CLAIM_MARGIN_S)),
    })
    if claim is None:
        return Outcome.skipped
    guard = (claim["_seq_no"], claim["_primary_term"])

    sent = await _send(es=es, names=names, settings=settings, http=http, entry=entry, attempts=attempts,
                       tenants=tenants)
    done = utc_now()
    if sent.ok:
        changes, outcome = {"status": "delivered", "delivered_at": iso(done),
                            "last_status_code": sent.status_code, **unclaimed()}, Outcome.delivered
    elif sent.permanent or attempts >= settings.delivery_max_attempts:
        error = sent.error if sent.permanent else f"{sent.error} (gave up after {attempts} tries)"
        changes, outcome = {**_dead(done, error), "last_status_code": sent.status_code}, Outcome.dead
    else:
        wait = backoff_seconds(attempts=attempts, base=settings.delivery_backoff_base,
                               cap=settings.delivery_backoff_cap)
        changes = {"status": "pending", "next_attempt_at": iso(done + timedelta(seconds=wait)),
                   "last_error": sent.error, "last_status_code": sent.status_code, **unclaimed()}
        outcome = Outcome.retrying
    if await _write(es, names, hit["_id"], guard, changes) is None:
        # Our claim expired and another worker took the entry: it will send again; receivers dedupe on the id.
        log.warning("delivery %s: claim lost before its result (%s) was recorded", hit["_id"], outcome.value)
    log.info("delivery %s (%s, try %d): %s%s", hit["_id"], entry["event"], attempts, outcome.value,
             f" — {sent.error}" if sent.error else "")
    return outcome


def _dead(moment: datetime, error: str) -> dict[str, Any]:
    return {"status": "dead", "dead_at": iso(moment), "last_error": error, **unclaimed()}


async def _send(
    *, es: AsyncElasticsearch, names: IndexNames, settings: Settings, http: httpx.AsyncClient,
    entry: dict[str, Any], attempts: int, tenants: dict[str, accounts.Tenant | None],
) -> _Sent:
    tenant = await _tenant(es, names, entry["tenant_id"], tenants)
    if tenant is None:
        return _Sent(ok=False, permanent=True, error=f"tenant {entry['tenant_id']} no longer exists")
    # The URL is read at send time, so fixing it and retrying a dead entry is enough.
    if entry["target"] == "crm":
        url, field = tenant.webhook_url, "webhook_url"
    else:
        url, field = tenant.messaging_webhook_url, "messaging_webhook_url"
    if not url:
        return _Sent(ok=False, permanent=True,
                     error=f"tenant {tenant.tenant_id} has no {entry['target']} webhook URL ({field}); "
                           "set it, then retry this delivery")
    message = OutboxMessage(delivery_id=entry["delivery_id"], event=entry["event"], created_at=entry["created_at"],
                            tenant_id=entry["tenant_id"], payload=entry.get("payload") or {}, attempt=attempts)
    request = webhook_format(tenant.webhook_format).request(
        message=message, secret=tenant.webhook_secret.get_secret_value(), timestamp=int(time.time()))
    body, headers = request.body, {"Content-Type": request.content_type, **request.headers}
    try:
        async with asyncio.timeout(settings.delivery_timeout):
            destination = await egress.resolve(url, settings)
    except TimeoutError:
        return _Sent(ok=False, error=f"its host name did not resolve within {settings.delivery_timeout:g} s")
    except egress.RefusedDestination as exc:
        # Permanent until the URL (or the operator's allowed networks) changes: fix it, then retry the delivery.
        return _Sent(ok=False, permanent=True, error=f"the {field} is refused: {exc}")
    headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]
    timeout = settings.delivery_timeout
    try:
        # httpx's timeout bounds each phase (connect, each read); asyncio.timeout bounds the whole exchange.
        # The request goes to the address just checked, so a name cannot resolve elsewhere in between; it is
        # streamed and its body never read: only the status counts, whatever the receiver sends back.
        async with asyncio.timeout(timeout), http.stream(
                "POST", destination.pinned_url, content=body, headers=headers, timeout=timeout,
                extensions={"sni_hostname": destination.host}) as response:
            status_code = response.status_code
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return _Sent(ok=False, permanent=True, error=f"the {field} is not a usable URL")
    except (TimeoutError, httpx.TimeoutException):
        return _Sent(ok=False, error=f"no answer within {timeout:g} s")
    except httpx.ConnectError:
        return _Sent(ok=False, error="could not connect to the receiver")
    except httpx.HTTPError:
        return _Sent(ok=False, error="the exchange with the receiver failed")
    if 200 <= status_code < 300:
        return _Sent(ok=True, status_code=status_code)
    # Only the status and fixed words: a receiver's body (maybe an internal page) never reaches a tenant or a log.
    return _Sent(ok=False, status_code=status_code,
                 error=f"answered {status_code}: {egress.status_reason(status_code)}")


async def run_worker(
    *, es: AsyncElasticsearch, names: IndexNames, settings: Settings, stop: asyncio.Event, worker_id: str,
    limit: int = 50,
) -> None:
    """Deliver due entries every poll interval until `stop` is set; errors are logged and backed off, never fatal."""
    log.info("delivery worker %s started (outbox %s)", worker_id, names.outbox)
    failures = 0
    async with make_http_client() as http:
        while not stop.is_set():
            try:
                done = await deliver_due(es=es, names=names, settings=settings, worker_id=worker_id, http=http,
                                         limit=limit)
                failures = 0
                if done.due:
                    log.info("delivery round: %s", done.describe())
                # A full batch means more may be waiting: go again at once.
                pause = 0.0 if done.claimed >= limit else settings.delivery_poll_interval
            except Exception as exc:  # noqa: BLE001 - the worker outlives any one failed round
                failures += 1
                pause = backoff_seconds(attempts=failures, base=settings.delivery_poll_interval, cap=60.0)
                if isinstance(exc, RecmatchError):
                    log.warning("delivery round failed: %s; next round in %.1f s", exc.detail, pause)
                else:
                    log.exception("delivery round failed unexpectedly; next round in %.1f s", pause)
            if pause:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
    log.info("delivery worker %s stopped", worker_id)


@asynccontextmanager
async def background_worker(
    *, es: AsyncElasticsearch, names: IndexNames, settings: Settings, worker_id: str | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a worker as a task for the duration of the block (the API's lifespan); stop it cleanly on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(es=es, names=names, settings=settings, stop=stop, worker_id=worker_id or default_worker_id()),
        name="recmatch-delivery-worker",
    )
    try:
        yield task
    finally:
        stop.set()
        try:
            # Sends in flight finish (bounded by the timeout); an entry cut short is resent once its claim expires.
            await asyncio.wait_for(task, timeout=settings.delivery_timeout + 5)
        except TimeoutError:
            log.warning("delivery worker did not stop in time; cancelled")
