"""Fault tests: an Elasticsearch node or a 3-node cluster of their own (the shared node is never stopped), on free
ports."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from recmatch.core.config import Settings
from recmatch.core.errors import RecmatchError
from recmatch.core.es import make_client
from recmatch.ops.localnode import LocalCluster, LocalNode
from tests.faults.support import port_open, wait_until

FIRST_PORT, LAST_PORT = 9250, 9299
CLUSTER_SIZE = 3


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
    # A fresh node: data an earlier run left on this port (a killed session, a cluster test) is not ours to keep.
    shutil.rmtree(node.node.node_dir / "data", ignore_errors=True)
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


@dataclass(frozen=True)
class FaultCluster:
    """A local cluster of 3 nodes these tests may kill nodes of; `settings` name every node, with 1 replica."""

    cluster: LocalCluster
    settings: Settings

    @property
    def nodes(self) -> list[LocalNode]:
        return self.cluster.nodes

    def node_named(self, name: str) -> LocalNode:
        return next(node for node in self.nodes if node.name == name)

    def heal(self) -> None:
        """Start the nodes that are not running again and wait for a whole, green cluster."""
        for node in self.nodes:
            if node.pid() is None:
                wait_until(lambda node=node: not port_open(node.port), timeout=60, what=f"{node.url} closes")
        self.cluster.up(say=lambda line: None, timeout=600)
        client = make_client(self.settings)
        try:
            client.options(request_timeout=130).cluster.health(wait_for_status="green", timeout="120s",
                                                               wait_for_nodes=str(CLUSTER_SIZE))
        finally:
            client.close()


def _free_cluster_ports() -> tuple[int, IO[str]]:
    """The first HTTP port P of FIRST_PORT..LAST_PORT with P..P+2 and their transport ports P+100.. all free, and
    a lock on it held until the handle is closed: two test sessions started together never share a cluster."""
    base = Settings()
    base.cache_dir.mkdir(parents=True, exist_ok=True)
    for port in range(FIRST_PORT, LAST_PORT - CLUSTER_SIZE + 2):
        handle = (base.cache_dir / f".fault-cluster-{port}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        ports = [port + offset for offset in range(CLUSTER_SIZE)]
        ours = [LocalNode(base.model_copy(update={"local_es_port": p})).pid() for p in ports]
        if not any(ours) and not any(port_open(p) or port_open(p + 100) for p in ports):
            return port, handle
        handle.close()
    raise RuntimeError(f"no {CLUSTER_SIZE} free ports for a fault-test cluster in {FIRST_PORT}..{LAST_PORT}")


@pytest.fixture(scope="module")
def fault_cluster() -> Iterator[FaultCluster]:
    """Our own 3-node cluster for the module: 512 MB heap a node, stopped by pid after it, its data removed."""
    port, claim = _free_cluster_ports()
    urls = ",".join(f"http://127.0.0.1:{port + offset}" for offset in range(CLUSTER_SIZE))
    settings = Settings(es_url=urls, local_es_port=port, local_es_nodes=CLUSTER_SIZE, local_es_cluster_heap="512m",
                        candidates_replicas=1, index_prefix=f"cluster-{uuid.uuid4().hex[:8]}")
    cluster = FaultCluster(LocalCluster(settings, CLUSTER_SIZE), settings)
    for node in cluster.nodes:  # a fresh cluster: data left by an earlier run would hold another cluster's state
        shutil.rmtree(node.node_dir / "data", ignore_errors=True)
    try:
        cluster.cluster.up(say=lambda line: None, timeout=600)
    except BaseException as exc:
        cluster.cluster.down(say=lambda line: None)  # whatever did start is ours to stop
        if not isinstance(exc, RecmatchError):
            raise
        if os.environ.get("CI"):
            pytest.fail(f"the fault-test cluster did not start: {exc.detail}", pytrace=False)
        pytest.skip(f"the fault-test cluster did not start: {exc.detail}")
    try:
        yield cluster
    finally:
        try:
            cluster.cluster.down(say=lambda line: None)
            for node in cluster.nodes:
                wait_until(lambda node=node: not port_open(node.port), timeout=60, what=f"{node.url} closes")
                shutil.rmtree(node.node_dir / "data", ignore_errors=True)
        finally:
            claim.close()
