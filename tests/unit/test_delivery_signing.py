"""Webhook signatures, the envelope and the backoff (pure), and the snippet docs/webhooks.md gives receivers."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from recmatch.webhooks.formats.recmatch import envelope
from recmatch.webhooks.signing import backoff_seconds, sign, verify

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "webhooks.md"
README = ROOT / "README.md"
SECRET = "whsec-test-secret"
BODY = b'{"id":"d-1","event":"prospect.saved","data":{"name":"Zo\xc3\xab"}}'


@pytest.fixture(scope="module", params=[DOCS, README], ids=["docs", "readme"])
def docs_verify(request: pytest.FixtureRequest) -> Callable[..., bool]:
    """The verification snippet exactly as the docs (and the README) show it, executed."""
    blocks = re.findall(r"```python\n(.*?)```", request.param.read_text(encoding="utf-8"), flags=re.DOTALL)
    [snippet] = [block for block in blocks if "def verify_recmatch_signature" in block]
    imported = {alias.name for node in ast.walk(ast.parse(snippet)) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names}
    assert imported <= {"hashlib", "hmac", "time"}, f"the snippet must need only the standard library: {imported}"
    namespace: dict = {}
    exec(compile(snippet, str(request.param), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verify_recmatch_signature"]


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, 1700000000) == f"t=1700000000,v1={expected}"
    assert sign(SECRET, BODY.decode(), 1700000000) == sign(SECRET, BODY, 1700000000)


def test_verify_accepts_its_own_signature_within_tolerance() -> None:
    header = sign(SECRET, BODY, 1700000000)
    assert verify(SECRET, BODY, header, now=1700000000)
    assert verify(SECRET, BODY, header, now=1700000300)
    assert verify(SECRET, BODY, header, now=1699999700)


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "too old", "from the future", "no v1", "no t",
                                  "bad t", "garbage", "empty", "other scheme"])
def test_verify_refuses(case: str) -> None:
    header, body, secret, now = sign(SECRET, BODY, 1700000000), BODY, SECRET, 1700000000
    match case:
        case "tampered body":
            body = BODY.replace(b"prospect.saved", b"profile.exported")
        case "wrong secret":
            secret = "another-secret"
        case "too old":
            now = 1700000301
        case "from the future":
            now = 1699999699
        case "no v1":
            header = "t=1700000000"
        case "no t":
            header = header.split(",")[1]
        case "bad t":
            header = header.replace("t=1700000000", "t=soon")
        case "garbage":
            header = "garbage"
        case "empty":
            header = ""
        case "other scheme":
            header = header.replace("v1=", "v0=")
    assert not verify(secret, body, header, now=now)


def test_verify_accepts_any_of_several_v1_values() -> None:
    header = sign(SECRET, BODY, 1700000000)
    rotated = f"{header.split(',')[0]},v1={'0' * 64},{header.split(',')[1]}"
    assert verify(SECRET, BODY, rotated, now=1700000000)


def test_docs_snippet_accepts_a_fresh_recmatch_signature(docs_verify: Callable[..., bool]) -> None:
    assert docs_verify(SECRET, BODY, sign(SECRET, BODY, int(time.time())))


def test_docs_snippet_refuses_what_verify_refuses(docs_verify: Callable[..., bool]) -> None:
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    assert not docs_verify(SECRET, BODY + b" ", header)
    assert not docs_verify("another-secret", BODY, header)
    assert not docs_verify(SECRET, BODY, sign(SECRET, BODY, now - 301))
    for bad in ("", "garbage", f"t={now}", header.split(",")[1], header.replace(f"t={now}", "t=soon"),
                header[:-1] + "é"):
        assert not docs_verify(SECRET, BODY, bad), bad


def test_envelope_is_compact_json_with_the_documented_fields() -> None:
    body = envelope(delivery_id="d-1", event="inmail.sent", created_at="2026-01-01T00:00:00.000+00:00",
                    tenant_id="t-1", payload={"subject": "Hi Zoë"})
    assert json.loads(body) == {"id": "d-1", "event": "inmail.sent", "created_at": "2026-01-01T00:00:00.000+00:00",
                                "tenant_id": "t-1", "data": {"subject": "Hi Zoë"}}
    assert b", " not in body and b": " not in body
    assert body == envelope(delivery_id="d-1", event="inmail.sent", created_at="2026-01-01T00:00:00.000+00:00",
                            tenant_id="t-1", payload={"subject": "Hi Zoë"})


@pytest.mark.parametrize("attempts", range(1, 12))
def test_backoff_doubles_from_base_with_up_to_base_of_jitter_and_is_capped(attempts: int) -> None:
    exponential = min(60.0 * 2 ** (attempts - 1), 3600.0)
    for _ in range(50):
        wait = backoff_seconds(attempts=attempts, base=60.0, cap=3600.0)
        assert exponential <= wait <= exponential + 60.0


def test_backoff_is_jittered() -> None:
    assert len({backoff_seconds(attempts=3, base=60.0, cap=3600.0) for _ in range(20)}) > 1
