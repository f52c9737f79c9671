"""PURE: every document id recmatch writes, built (and where needed parsed) in one place.

Each index's owning module calls these; nobody else formats an id. Keeping them together shows at a glance which
parts make up each id, and keeps a key's format and its parser side by side.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from typing import Any

import orjson

__all__ = [
    "SNAPSHOT_KEY_PATTERN",
    "action_applied_marker",
    "action_delivery_id",
    "action_state_id",
    "contact_delivery_id",
    "event_id",
    "idempotency_id",
    "pipeline_doc_id",
    "seat_doc_id",
    "server_secret_doc_id",
    "snapshot_doc_id",
    "snapshot_key",
    "snapshot_key_day",
    "tenant_doc_id",
    "usage_id",
]

# A snapshot key: pipeline version, day, learning version ("v3-20261202-l7").
SNAPSHOT_KEY_PATTERN = r"^v\d+-\d{8}-l\d+$"
_SNAPSHOT_KEY = re.compile(r"^v(?P<version>\d+)-(?P<day>\d{8})-l(?P<learning>\d+)$")


def _joined(*parts: str) -> str:
    """PARTS joined by ':' with ':' and '%' escaped in each, so two different tuples never give one id
    ("p-col:x" + "c-1" against "p-col" + "x:c-1"); parts without those characters read exactly as before.
    Ids past 400 bytes (Elasticsearch allows 512), only reachable by escaping many characters, become a hash."""
    joined = ":".join(part.replace("%", "%25").replace(":", "%3A") for part in parts)
    return joined if len(joined.encode()) <= 400 else f"h:{hashlib.sha256(joined.encode()).hexdigest()}"


# -- accounts -----------------------------------------------------------------------------------------------------


def tenant_doc_id(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def seat_doc_id(key_hash: str) -> str:
    """Seats are found by the hash of their API key, the only thing a request carries."""
    return f"seat:{key_hash}"


def server_secret_doc_id() -> str:
    return "server:secret"


# -- pipelines and their lists ------------------------------------------------------------------------------------


def pipeline_doc_id(tenant_id: str, crm_pipeline_id: str) -> str:
    return f"{tenant_id}:{crm_pipeline_id}"


def snapshot_key(*, version: int, day: date, learning_version: int) -> str:
    """Pipeline version + day + learning version: the same key means the same list."""
    return f"v{version}-{day:%Y%m%d}-l{learning_version}"


def snapshot_key_day(key: str) -> date:
    """The day in a snapshot key; ValueError when KEY is not one."""
    matched = _SNAPSHOT_KEY.match(key)
    if matched is None:
        raise ValueError(f"not a snapshot key: {key!r}")
    return datetime.strptime(matched["day"], "%Y%m%d").date()


def snapshot_doc_id(tenant_id: str, crm_pipeline_id: str, key: str) -> str:
    return f"{pipeline_doc_id(tenant_id, crm_pipeline_id)}:{key}"


# -- actions ------------------------------------------------------------------------------------------------------


def action_state_id(tenant_id: str, crm_pipeline_id: str, candidate_id: str) -> str:
    """The status of one candidate for one pipeline of a tenant (the actions index)."""
    return _joined(tenant_id, crm_pipeline_id, candidate_id)


def action_delivery_id(tenant_id: str, crm_pipeline_id: str, candidate_id: str, action: str) -> str:
    """The webhook delivery an action queues: one per action, so queueing it again is a no-op."""
    return _joined(tenant_id, crm_pipeline_id, candidate_id, action)


def action_applied_marker(action: str, candidate_id: str, at: str) -> str:
    """What a pipeline keeps to know it learned from this very action (short: it is read with every list)."""
    return hashlib.sha256(orjson.dumps([action, at, candidate_id])).hexdigest()[:16]


def contact_delivery_id(inmail_delivery_id: str) -> str:
    """The delivery of contact details a candidate shared after an InMail: one per InMail."""
    return f"{inmail_delivery_id}:contact"


def event_id(event: dict[str, Any]) -> str:
    """An event's id is a hash of what identifies it (who, which pipeline and candidate, what, when; not the
    candidate's features, which may change before a retry), so recording the same event twice stores it once."""
    identity = [event.get(field) for field in ("tenant_id", "crm_pipeline_id", "candidate_id", "action", "at",
                                                "snapshot")]
    return hashlib.sha256(orjson.dumps(identity)).hexdigest()[:24]


def usage_id(tenant_id: str, seat_id: str, month: str, kind: str) -> str:
    return _joined(tenant_id, seat_id, month, kind)


def idempotency_id(tenant_id: str, seat_id: str, key: str) -> str:
    return _joined(tenant_id, seat_id, key)
