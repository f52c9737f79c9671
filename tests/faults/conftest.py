"""Fault tests: an Elasticsearch node of their own (the shared one is never stopped), on a free port."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from recmatch.core.config import Settings
from recmatch.core.errors import RecmatchError
from recmatch.core.es import make_client
from recmatch.ops.localnode import LocalNode
from tests.faults.support import port_open, wait_until

FIRST_PORT, LAST_PORT = 9250, 9299


@dataclass(frozen=True)
class FaultNode:
    """A local node these tests may stop and start; `settings` point at it with a prefix of their own."""

    node: LocalNode
    settings: Settings

    def stop(self) -> None:
        self.node.down(say=lambda line: None)
        # The node drops its pid file as it begins to shut down: wait until the port is really closed.
        wait_until(lambda: not port_open(self.node.settings.local_es_port), timeout=60, what="the node's port closes")

    def start(self) -> None:
        self.node.up(say=lambda line: None, timeout=180)


def _free_node_port() -> int:
    base = Settings()
    for port in range(FIRST_PORT, LAST_PORT + 1):
        taken = LocalNode(base.model_copy(update={"local_es_port": port})).pid() is not None
        if not taken and not port_open(port):
            return port
    raise RuntimeError(f"no free port for a fault-test node in {FIRST_PORT}..{LAST_PORT}")


@pytest.fixture(scope="module")
def fault_node() -> Iterator[FaultNode]:
    """Our own node for the module that uses it, stopped by its pid after it (not left running), its data removed."""
    port = _free_node_port()
    settings = Settings(es_url=f"http://127.0.0.1:{port}", local_es_port=port, local_es_heap="512m",
                        index_prefix=f"fault-{uuid.uuid4().hex[:8]}")
    node = FaultNode(LocalNode(settings), settings)
    try:
        node.start()
    except RecmatchError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the fault-test Elasticsearch node did not start: {exc.detail}", pytrace=False)
        pytest.skip(f"the fault-test Elasticsearch node did not start: {exc.detail}")
    try:
        yield node
    finally:
        if node.node.pid() is not None:
            client = make_client(settings)
            try:
                client.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*",
                                                                 expand_wildcards="all")
            except Exception:  # noqa: BLE001 - a node that is already unhealthy is stopped anyway
                pass
            finally:
                client.close()
            node.stop()
        # The data is ours alone; the logs stay in node-<port>/logs for a look after a failure.
        shutil.rmtree(node.node.node_dir / "data", ignore_errors=True)
