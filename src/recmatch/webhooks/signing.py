"""PURE: HMAC-SHA256 webhook signatures (recmatch's scheme) and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import time

from tenacity import RetryCallState, Retrying, wait_exponential, wait_random

SIGNATURE_HEADER = "X-Recmatch-Signature"


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


def backoff_seconds(*, attempts: int, base: float, cap: float) -> float:
    """Wait before the next try after `attempts` tries: base·2^(attempts-1) capped, plus up to base of jitter."""
    wait = wait_exponential(multiplier=base, max=cap) + wait_random(0, base)
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempts)
    return float(wait(state))
