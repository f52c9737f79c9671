"""What one unauthenticated oversized request costs a served API: its resident memory before and after.

It runs `recmatch serve` on a free loopback port (its own index prefix), sends one `PUT /v1/pipelines/x` of
--megabytes (streamed, with and without Content-Length), and prints the answers and the server's RSS.

    python scripts/body_limit_probe.py --megabytes 200
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psutil

from recmatch.core.config import get_settings
from recmatch.core.es import make_client

CHUNK = b"x" * (1024 * 1024)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def body(megabytes: int) -> Iterator[bytes]:
    yield b'{"title": "'
    for _ in range(megabytes):
        yield CHUNK
    yield b'"}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    prefix = f"probe-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "RECMATCH_INDEX_PREFIX": prefix, "RECMATCH_DELIVERY_IN_API": "false"}
    server = subprocess.Popen([sys.executable, "-m", "recmatch", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        process = psutil.Process(server.pid)
        before = process.memory_info().rss / 2**20
        with httpx.Client(timeout=120) as client:
            for label, headers in (("with Content-Length", {"Content-Length": str(args.megabytes * 2**20 + 13)}),
                                   ("chunked", {})):
                try:
                    answer = client.put(f"{base}/v1/pipelines/x", content=body(args.megabytes),
                                        headers={"Content-Type": "application/json", **headers})
                    outcome = f"{answer.status_code} {answer.text}"
                except httpx.HTTPError as exc:  # the server may close the connection once it has answered
                    outcome = f"connection closed after the answer ({type(exc).__name__})"
                print(f"{args.megabytes} MB unauthenticated PUT, {label}: {outcome}")
        after = process.memory_info().rss / 2**20
        print(f"server RSS: {before:.0f} MB before, {after:.0f} MB after ({after - before:+.0f} MB)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        es = make_client(get_settings())
        made = es.options(ignore_status=404).indices.get(index=f"{prefix}-*", expand_wildcards="all")
        if made:
            es.indices.delete(index=",".join(made))  # the API prepared them at start: leave nothing behind


if __name__ == "__main__":
    main()
