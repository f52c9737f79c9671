"""A real webhook receiver on 127.0.0.1 for delivery tests: checks signatures, counts deliveries, fails on request."""

from __future__ import annotations

import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from recmatch.webhooks.formats import plain_json
from recmatch.webhooks.signing import verify

Step = Literal["fail", "hang"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler never holds up shutdown
    request_queue_size = 128  # many workers sending at once must not overflow the listen backlog


@dataclass(frozen=True)
class Received:
    path: str
    delivery_id: str
    event: str
    attempt: int
    signature_ok: bool
    body: dict[str, Any]
    answered: int | None  # None: hung past the sender's timeout


class WebhookReceiver:
    """Answers 200 to every signed POST (401 when the signature is wrong), unless told to fail (500) or hang first."""

    def __init__(self, *, hang_seconds: float = 5.0, delay_seconds: float = 0.0,
                 webhook_format: str = "recmatch") -> None:
        self.secret = ""
        self.webhook_format = webhook_format  # which format's headers and signature to read
        self.hang_seconds = hang_seconds
        self.delay_seconds = delay_seconds
        self.received: list[Received] = []
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # hung handlers return at once
        self._server.shutdown()
        self._server.server_close()

    def then(self, *steps: Step) -> None:
        """The next requests, in order, fail or hang; later ones succeed."""
        with self._lock:
            self._steps.extend(steps)

    def fail_always(self) -> None:
        self.then(*["fail"] * 1000)

    def succeed_from_now(self) -> None:
        with self._lock:
            self._steps.clear()

    def delivered(self) -> Counter[str]:
        """How many times each delivery id was answered with 200."""
        with self._lock:
            return Counter(item.delivery_id for item in self.received if item.answered == 200)

    def requests_for(self, delivery_id: str) -> list[Received]:
        with self._lock:
            return [item for item in self.received if item.delivery_id == delivery_id]

    def _next_step(self) -> Step | None:
        with self._lock:
            return self._steps.pop(0) if self._steps else None

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                step = receiver._next_step()
                if receiver.webhook_format == "plain-json":
                    item = dict(
                        path=self.path, delivery_id=self.headers.get("X-Webhook-Id", ""),
                        event=self.headers.get("X-Webhook-Event", ""), attempt=0,
                        signature_ok=hmac.compare_digest(plain_json.signature(receiver.secret, raw),
                                                         self.headers.get("X-Webhook-Signature", "")),
                        body=json.loads(raw),
                    )
                else:
                    item = dict(
                        path=self.path, delivery_id=self.headers.get("X-Recmatch-Delivery", ""),
                        event=self.headers.get("X-Recmatch-Event", ""),
                        attempt=int(self.headers.get("X-Recmatch-Attempt", "0")),
                        signature_ok=verify(receiver.secret, raw, self.headers.get("X-Recmatch-Signature", "")),
                        body=json.loads(raw),
                    )
                if step == "hang":
                    receiver._record(Received(**item, answered=None))
                    receiver._released.wait(receiver.hang_seconds)
                    return
                if receiver.delay_seconds:
                    receiver._released.wait(receiver.delay_seconds)
                status = 401 if not item["signature_ok"] else 500 if step == "fail" else 200
                receiver._record(Received(**item, answered=status))
                answer = b"ok" if status == 200 else b"receiver failed on purpose"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                pass

        return Handler
