"""The outbox: signed webhooks to a tenant's CRM and messaging endpoints, retried with backoff, dead after N tries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

import elasticsearch
import httpx
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel
from tenacity import RetryCallState, Retrying, wait_exponential, wait_random

from recmatch.accounts import service as accounts
from recmatch.core.config import Settings
from recmatch.core.errors import Conflict, InvalidInput, NotFound, RecmatchError
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.webhooks import egress

log = logging.getLogger("recmatch.delivery")

Target = Literal["crm", "messaging"]
DeliveryStatus = Literal["pending", "delivering", "delivered", "dead"]

SIGNATURE_HEADER = "X-Recmatch-Signature"
EVENT_HEADER = "X-Recmatch-Event"
DELIVERY_HEADER = "X-Recmatch-Delivery"
ATTEMPT_HEADER = "X-Recmatch-Attempt"
USER_AGENT = "recmatch-webhooks/1"

# A claim outlives one send (bounded by delivery_timeout) by this much; after it, another worker may take the entry.
CLAIM_MARGIN_S = 30.0
SEND_CONCURRENCY = 10
MAX_DELIVERY_ID = 512  # Elasticsearch's limit on a document id, in bytes


# -- signing (pure) -----------------------------------------------------------------------------------------


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, body: bytes | str, timestamp: int) -> str:
    """The X-Recmatch-Signature value: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + _as_bytes(body), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes | str, header: str, tolerance_s: int = 300, now: float | None = None) -> bool:
    """True when the header signs this exact body with this secret, within tolerance_s of now (constant-time)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).partition(",v1=")[2].encode()
    # Check every v1 (a receiver may see two while a secret rotates) so timing does not depend on which matched.
    matched = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    return any(matched)


def envelope(*, delivery_id: str, event: str, created_at: str, tenant_id: str, payload: dict[str, Any]) -> bytes:
    """The request body: the same bytes on every try, so a receiver can dedupe and verify it."""
    document = {"id": delivery_id, "event": event, "created_at": created_at, "tenant_id": tenant_id, "data": payload}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def backoff_seconds(*, attempts: int, base: float, cap: float) -> float:
    """Wait before the next try after `attempts` tries: base·2^(attempts-1) capped, plus up to base of jitter."""
    wait = wait_exponential(multiplier=base, max=cap) + wait_random(0, base)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempts)
    return float(wait(state))


# -- enqueue ------------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


async def enqueue(
    *,
    es: AsyncElasticsearch,
    names: IndexNames,
    tenant_id: str,
    target: Target,
    event: str,
    payload: dict[str, Any],
    delivery_id: str,
    crm_pipeline_id: str | None = None,
    candidate_id: str | None = None,
) -> bool:
    """Add a pending delivery; False when this delivery_id is already in the outbox (enqueue is idempotent)."""
    if not delivery_id or len(delivery_id.encode()) > MAX_DELIVERY_ID:
        raise InvalidInput(f"delivery_id must be 1 to {MAX_DELIVERY_ID} bytes")
    now = _iso(_now())
    document = {
        "delivery_id": delivery_id, "tenant_id": tenant_id, "target": target, "event": event,
        "crm_pipeline_id": crm_pipeline_id, "candidate_id": candidate_id, "payload": payload,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
    }
    with map_es_errors("adding a delivery to the outbox"):
        try:
            await es.create(index=names.index("outbox"), id=delivery_id, document=document)
        except elasticsearch.ConflictError:
            return False
    return True


# -- the worker ---------------------------------------------------------------------------------------------


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
    index = names.index("outbox")
    now = _iso(_now())
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
            return await es.update(index=names.index("outbox"), id=hit_id, doc=changes,
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
    now = _now()
    guard = (hit["_seq_no"], hit["_primary_term"])
    if entry["status"] == "delivering" and entry["attempts"] >= settings.delivery_max_attempts:
        error = (f"the worker {entry.get('claimed_by')} stopped while sending try {entry['attempts']} "
                 "and no tries are left")
        written = await _write(es, names, hit["_id"], guard, _dead(now, error))
        return Outcome.dead if written else Outcome.skipped

    attempts = entry["attempts"] + 1
    claim = await _write(es, names, hit["_id"], guard, {
        "status": "delivering", "claimed_by": worker_id, "attempts": attempts,
        "claimed_until": _iso(now + timedelta(seconds=settings.delivery_timeout + CLAIM_MARGIN_S)),
    })
    if claim is None:
        return Outcome.skipped
    guard = (claim["_seq_no"], claim["_primary_term"])

    sent = await _send(es=es, names=names, settings=settings, http=http, entry=entry, attempts=attempts,
                       tenants=tenants)
    done = _now()
    if sent.ok:
        changes, outcome = {"status": "delivered", "delivered_at": _iso(done),
                            "last_status_code": sent.status_code, **_unclaimed()}, Outcome.delivered
    elif sent.permanent or attempts >= settings.delivery_max_attempts:
        error = sent.error if sent.permanent else f"{sent.error} (gave up after {attempts} tries)"
        changes, outcome = {**_dead(done, error), "last_status_code": sent.status_code}, Outcome.dead
    else:
        wait = backoff_seconds(attempts=attempts, base=settings.delivery_backoff_base,
                               cap=settings.delivery_backoff_cap)
        changes = {"status": "pending", "next_attempt_at": _iso(done + timedelta(seconds=wait)),
                   "last_error": sent.error, "last_status_code": sent.status_code, **_unclaimed()}
        outcome = Outcome.retrying
    if await _write(es, names, hit["_id"], guard, changes) is None:
        # Our claim expired and another worker took the entry: it will send again; receivers dedupe on the id.
        log.warning("delivery %s: claim lost before its result (%s) was recorded", hit["_id"], outcome.value)
    log.info("delivery %s (%s, try %d): %s%s", hit["_id"], entry["event"], attempts, outcome.value,
             f" — {sent.error}" if sent.error else "")
    return outcome


def _unclaimed() -> dict[str, Any]:
    return {"claimed_by": None, "claimed_until": None}


def _dead(moment: datetime, error: str) -> dict[str, Any]:
    return {"status": "dead", "dead_at": _iso(moment), "last_error": error, **_unclaimed()}


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
    body = envelope(delivery_id=entry["delivery_id"], event=entry["event"], created_at=entry["created_at"],
                    tenant_id=entry["tenant_id"], payload=entry.get("payload") or {})
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: entry["event"],
        DELIVERY_HEADER: entry["delivery_id"],
        ATTEMPT_HEADER: str(attempts),
        SIGNATURE_HEADER: sign(tenant.webhook_secret.get_secret_value(), body, int(time.time())),
    }
    try:
        destination = await egress.resolve(url, settings)
    except egress.RefusedDestination as exc:
        # Permanent until the URL (or the operator's allowed networks) changes: fix it, then retry the delivery.
        return _Sent(ok=False, permanent=True, error=f"the {field} is refused: {exc}")
    headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]
    timeout = settings.delivery_timeout
    try:
        # httpx's timeout bounds each phase (connect, each read); asyncio.timeout bounds the whole exchange.
        # The request goes to the address just checked, so a name cannot resolve elsewhere in between.
        # Streamed and never read: only the status counts, whatever the receiver sends back.
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
    log.info("delivery worker %s started (outbox %s)", worker_id, names.index("outbox"))
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


# -- admin: list and retry ----------------------------------------------------------------------------------


class Delivery(BaseModel):
    """An outbox entry as an admin sees it."""

    delivery_id: str
    target: Target
    event: str
    status: DeliveryStatus
    attempts: int
    crm_pipeline_id: str | None = None
    candidate_id: str | None = None
    created_at: datetime
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    dead_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None


class DeliveryList(BaseModel):
    total: int
    deliveries: list[Delivery]


async def list_deliveries(
    *, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, status: DeliveryStatus | None = None,
    limit: int = 50,
) -> DeliveryList:
    """The tenant's deliveries, newest first, optionally of one status."""
    filters: list[dict[str, Any]] = [{"term": {"tenant_id": tenant_id}}]
    if status is not None:
        filters.append({"term": {"status": status}})
    with map_es_errors("listing deliveries"):
        found = await es.search(index=names.index("outbox"), query={"bool": {"filter": filters}}, size=limit,
                                sort=[{"created_at": "desc"}, {"delivery_id": "asc"}], source_excludes=["payload"],
                                track_total_hits=True)
    return DeliveryList(total=found["hits"]["total"]["value"],
                        deliveries=[Delivery.model_validate(hit["_source"]) for hit in found["hits"]["hits"]])


async def retry_delivery(*, es: AsyncElasticsearch, names: IndexNames, tenant_id: str, delivery_id: str) -> Delivery:
    """Put a dead delivery back in the queue now, with its tries reset."""
    index = names.index("outbox")
    with map_es_errors("reading a delivery"):
        found = await ignoring(es, 404).get(index=index, id=delivery_id)
    # Another tenant's entry answers exactly like a missing one.
    if not found.get("found") or found["_source"]["tenant_id"] != tenant_id:
        raise NotFound(f"no delivery {delivery_id!r}")
    if found["_source"]["status"] != "dead":
        raise Conflict(f"delivery {delivery_id!r} is {found['_source']['status']}; only dead deliveries can be retried")
    changes = {"status": "pending", "attempts": 0, "next_attempt_at": _iso(_now()), "dead_at": None, **_unclaimed()}
    with map_es_errors("retrying a delivery"):
        try:
            # wait_for: the admin's next list already shows it pending.
            await es.update(index=index, id=delivery_id, doc=changes, if_seq_no=found["_seq_no"],
                            if_primary_term=found["_primary_term"], refresh="wait_for")
        except elasticsearch.ConflictError:
            raise Conflict(f"delivery {delivery_id!r} changed meanwhile; list it again") from None
    return Delivery.model_validate({**found["_source"], **changes})
