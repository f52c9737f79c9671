"""Helpers for fault tests: free ports, a served API process, candidate files, an idempotent webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from recmatch.core.config import Settings
from recmatch.webhooks.signing import verify


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Any, *, timeout: float, every: float = 0.1, what: str = "condition") -> float:
    """Poll until condition() is truthy; returns the seconds it took, fails past the timeout."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not true after {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def candidate(number: int, **changes: Any) -> dict[str, Any]:
    """One candidate every fault-test pipeline ("Software Engineer" around Austin) matches."""
    record = {
        "candidate_id": f"c-{number:06d}", "name": f"Person {number}", "title": "Software Engineer",
        "company": "Acme", "location": {"name": "Austin, TX, US", "lat": 30.2672, "lon": -97.7431, "country": "US"},
        "skills": ["Python", "SQL"], "years_experience": number % 15, "open_to_work": True, "allow_export": True,
    }
    record.update(changes)
    return record


def write_candidates(path: Path, count: int, *, start: int = 0) -> Path:
    path.write_bytes(b"".join(orjson.dumps(candidate(n)) + b"\n" for n in range(start, start + count)))
    return path


def recmatch_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a recmatch subprocess for these settings (RECMATCH_ variables of ours win)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECMATCH_")}
    env.update({"RECMATCH_ES_URL": settings.es_url, "RECMATCH_INDEX_PREFIX": settings.index_prefix,
                "RECMATCH_CACHE_DIR": str(settings.cache_dir),
                # The receivers listen on loopback, and the tenants' secrets are sealed with the session's key.
                "RECMATCH_WEBHOOK_ALLOW_HTTP": str(settings.webhook_allow_http).lower(),
                "RECMATCH_WEBHOOK_ALLOWED_NETWORKS": json.dumps(settings.webhook_allowed_networks), **extra})
    if settings.secrets_key is not None:
        env["RECMATCH_SECRETS_KEY"] = settings.secrets_key.get_secret_value()
    return env


@dataclass
class ServedApi:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""


@contextmanager
def served_api(settings: Settings, workdir: Path, **env: str) -> Iterator[ServedApi]:
    """`recmatch serve` as a subprocess on a free loopback port; stopped (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    log = workdir / f"api-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "recmatch", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=recmatch_env(settings, **env), cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )
    api = ServedApi(process=process, url=f"http://127.0.0.1:{port}", log=log)
    try:
        def answers() -> bool:
            assert process.poll() is None, f"recmatch serve exited ({process.returncode}):\n{api.log_text()[-3000:]}"
            try:
                return httpx.get(f"{api.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout=60, every=0.2, what="recmatch serve answers /healthz")
        yield api
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- an idempotent webhook receiver ----------------------------------------------------------------------------------


@dataclass
class DeliveryStore:
    """What a well-built receiver keeps: each delivery once by X-Recmatch-Delivery; raw requests counted too.

    It outlives the receiver process (like a database behind a web server), so a restarted receiver still dedupes.
    """

    secret: str = ""
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, delivery_id: str, body: bytes, signature: str) -> bool:
        """Record one request; True when it was valid (stored now or already)."""
        with self.lock:
            self.raw[delivery_id] += 1
            if not verify(self.secret, body, signature):
                self.bad_signatures += 1
                return False
            self.stored.setdefault(delivery_id, json.loads(body))
            return True

    @property
    def duplicates(self) -> int:
        """Requests beyond the first for each delivery id (retries the receiver had to dedupe)."""
        with self.lock:
            return sum(count - 1 for count in self.raw.values())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a new receiver takes the same port right after the old one stopped
    request_queue_size = 128


class IdempotentReceiver:
    """A webhook endpoint on a fixed loopback port; the first `slow` requests are stored but answered too late."""

    def __init__(self, store: DeliveryStore, *, port: int, slow: int = 0, slow_seconds: float = 1.0) -> None:
        self.store, self.port, self.slow, self.slow_seconds = store, port, slow, slow_seconds
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"receiver-{port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> IdempotentReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _take_slow(self) -> bool:
        with self._lock:
            if self.slow > 0:
                self.slow -= 1
                return True
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = receiver.store.accept(self.headers.get("X-Recmatch-Delivery", ""), body,
                                           self.headers.get("X-Recmatch-Signature", ""))
                if ok and receiver._take_slow():
                    receiver._released.wait(receiver.slow_seconds)  # stored, but the sender has given up
                answer = b"ok" if ok else b"bad signature"
                try:
                    self.send_response(200 if ok else 401)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender closed the connection after its timeout

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                pass

        return Handler
