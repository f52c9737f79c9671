"""Real local Elasticsearch nodes for machines without Docker: fetch, start, stop, status; one node or a cluster."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from recmatch.core.config import Settings
from recmatch.core.errors import RecmatchError
from recmatch.indexing.locks import pid_alive

ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
MIN_JAVA = 21
CLUSTER_NAME = "recmatch-local"

Say = Callable[[str], None]


class LocalNodeError(RecmatchError):
    """The local node could not be fetched, started or stopped."""


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    url: str
    home: Path
    log_file: Path

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return f"Elasticsearch {state} at {self.url}\n  home: {self.home}\n  logs: {self.log_file}"


@dataclass(frozen=True)
class LocalNode:
    """Paths and commands of one local node: the single node of the settings, or node ORDINAL of a cluster of SIZE."""

    settings: Settings
    ordinal: int = 0
    size: int = 1

    @property
    def version(self) -> str:
        return self.settings.local_es_version

    @property
    def port(self) -> int:
        return self.settings.local_es_port + self.ordinal

    @property
    def transport_port(self) -> int:
        first = self.settings.local_es_transport_port or self.settings.local_es_port + 100
        return first + self.ordinal

    @property
    def name(self) -> str:
        return "local" if self.size == 1 else f"node-{self.port}"

    @property
    def cluster_name(self) -> str:
        return CLUSTER_NAME if self.size == 1 else f"{CLUSTER_NAME}-{self.settings.local_es_port}x{self.size}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dist_dir(self) -> Path:
        return self.settings.cache_dir / "dist"

    @property
    def home(self) -> Path:
        return self.settings.cache_dir / f"elasticsearch-{self.version}"

    @property
    def node_dir(self) -> Path:
        return self.settings.cache_dir / f"node-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "es.pid"

    @property
    def log_file(self) -> Path:
        return self.node_dir / "logs" / f"{self.cluster_name}.log"

    @property
    def launcher_log(self) -> Path:
        return self.node_dir / "logs" / "launcher.out"

    def pid(self) -> int | None:
        """The node's pid when it is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def status(self) -> NodeStatus:
        pid = self.pid()
        return NodeStatus(pid is not None and _answers(self.url), pid, self.url, self.home, self.log_file)

    def up(self, *, say: Say = print, timeout: float = 120.0) -> NodeStatus:
        """Start the node unless it already runs; wait for yellow health (a cluster's node: until it has joined)."""
        self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.settings.cache_dir / ".node.lock"):
            if self.pid() is not None and _answers(self.url):
                say(f"Reusing the running Elasticsearch {self.version} at {self.url} (pid {self.pid()}).")
                return self.status()
            java_home, user = self.prepare(say=say)
            say(f"Starting Elasticsearch {self.version} at {self.url} (Java {java_home}, logs {self.log_file}) ...")
            self.launch(java_home, user, timeout=timeout)
            self.wait_healthy(timeout=timeout)
            say(f"Elasticsearch {self.version} is up at {self.url} (pid {self.pid()}).")
            return self.status()

    def prepare(self, *, say: Say) -> tuple[Path, str | None]:
        """Check the port, find Java, install the distribution and write this node's configuration."""
        if _answers(self.url):
            raise LocalNodeError(
                f"port {self.port} already answers but is not our node; "
                "point RECMATCH_ES_URL at it, or set RECMATCH_LOCAL_ES_PORT to a free port"
            )
        java_home = find_java(self.settings)
        self._install(say=say)
        user = self._run_as()
        self._configure(user)
        return java_home, user

    def down(self, *, say: Say = print, timeout: float = 60.0) -> bool:
        """Stop the node by its pid; True when one was running."""
        pid = self.pid()
        if pid is None:
            say(f"No local Elasticsearch node is running at {self.url}.")
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.25)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        say(f"Stopped Elasticsearch at {self.url} (pid {pid}).")
        return True

    def kill(self) -> int | None:
        """SIGKILL the node (fault tests): no shutdown, no goodbye to the cluster; returns the pid killed."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return pid

    # -- installation -------------------------------------------------------------------------------

    def _install(self, *, say: Say) -> None:
        if (self.home / "bin" / "elasticsearch").is_file():
            return
        archive = self.dist_dir / f"elasticsearch-{self.version}.zip"
        if not archive.is_file():
            self._fetch(archive, say=say)
        say(f"Unpacking {archive.name} into {self.home} ...")
        staging = self.home.with_name(self.home.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(staging)
        inner = staging / f"elasticsearch-{self.version}"
        for script in (inner / "bin").iterdir():
            script.chmod(0o755)  # zipfile drops the executable bit
        inner.rename(self.home)
        shutil.rmtree(staging, ignore_errors=True)

    def _fetch(self, archive: Path, *, say: Say) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalNodeError("Maven (mvn) is needed to fetch Elasticsearch from Maven Central; install it")
        artifact = ARTIFACT.format(version=self.version)
        say(f"Fetching {artifact} from Maven Central (about 130 MB, once) ...")
        self.dist_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={self.dist_dir}"],
            capture_output=True,
            text=True,
            cwd=self.dist_dir,
        )
        if result.returncode != 0 or not archive.is_file():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise LocalNodeError(f"could not fetch {artifact} with mvn (exit {result.returncode}):\n{tail}")

    def _run_as(self) -> str | None:
        """The user the node runs as: a system user when we are root (Elasticsearch refuses root)."""
        if os.geteuid() != 0:
            return None
        name = self.settings.local_es_user
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
                capture_output=True,
            )
        return name

    def _configure(self, user: str | None) -> None:
        config = self.node_dir / "config"
        for sub in ("data", "logs", "tmp"):
            (self.node_dir / sub).mkdir(parents=True, exist_ok=True)
        marker = self.node_dir / "cluster-name"
        written = marker.read_text().strip() if marker.is_file() else CLUSTER_NAME
        if written != self.cluster_name and any((self.node_dir / "data").iterdir()):
            raise LocalNodeError(
                f"{self.node_dir / 'data'} holds the data of the local cluster {written!r}, not of "
                f"{self.cluster_name!r}; start that one again, or remove the directory"
            )
        marker.write_text(self.cluster_name + "\n")
        if not config.is_dir():
            shutil.copytree(self.home / "config", config)
        if self.size == 1:
            topology = (
                "# Written by `recmatch es up`: a single loopback-only node for development and tests.\n"
                f"cluster.name: {self.cluster_name}\n"
                f"node.name: {self.name}\n"
                "network.host: 127.0.0.1\n"
                f"http.port: {self.port}\n"
                "transport.port: 0\n"
                "discovery.type: single-node\n"
            )
        else:
            peers = [LocalNode(self.settings, ordinal, self.size) for ordinal in range(self.size)]
            topology = (
                f"# Written by `recmatch es up --nodes {self.size}`: node {self.ordinal + 1} of a loopback-only "
                "cluster.\n"
                f"cluster.name: {self.cluster_name}\n"
                f"node.name: {self.name}\n"
                "network.host: 127.0.0.1\n"
                f"http.port: {self.port}\n"
                f"transport.port: {self.transport_port}\n"
                f"discovery.seed_hosts: [{', '.join(f'127.0.0.1:{peer.transport_port}' for peer in peers)}]\n"
                f"cluster.initial_master_nodes: [{', '.join(peer.name for peer in peers)}]\n"
            )
        (config / "elasticsearch.yml").write_text(
            topology
            + "xpack.security.enabled: false\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "action.destructive_requires_name: false\n"
            f"path.data: {self.node_dir / 'data'}\n"
            f"path.logs: {self.node_dir / 'logs'}\n"
        )
        heap = self.settings.local_es_heap if self.size == 1 else self.settings.local_es_cluster_heap
        options = config / "jvm.options.d"
        options.mkdir(exist_ok=True)
        (options / "recmatch.options").write_text(
            f"-Xms{heap}\n-Xmx{heap}\n"
            f"-Xlog:gc*:file={self.node_dir / 'logs' / 'gc.log'}:utctime:filecount=2,filesize=16m\n"
        )
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in [self.node_dir, *self.node_dir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            for parent in (self.settings.cache_dir, *self.settings.cache_dir.parents):
                if parent.is_dir() and not parent.stat().st_mode & 0o001:
                    raise LocalNodeError(
                        f"{parent} is not searchable by the user {user}; "
                        "set RECMATCH_CACHE_DIR to a path under /var or /opt"
                    )

    def launch(self, java_home: Path, user: str | None, *, timeout: float) -> None:
        """Start the node's process (daemonised, pid file written); does not wait for the cluster."""
        self.pid_file.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(java_home),
            "ES_PATH_CONF": str(self.node_dir / "config"),
            "ES_TMPDIR": str(self.node_dir / "tmp"),
            "LANG": "C.UTF-8",
        }
        command = [str(self.home / "bin" / "elasticsearch"), "-d", "-p", str(self.pid_file)]
        if user is not None:
            command = ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]
        with self.launcher_log.open("w") as out:
            launched = subprocess.run(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.node_dir, timeout=timeout
            )
        if launched.returncode != 0:
            raise LocalNodeError(f"Elasticsearch did not start (exit {launched.returncode}).\n{self._log_tail()}")

    def wait_healthy(self, *, timeout: float) -> None:
        """Wait until this node answers yellow health in a cluster with all SIZE nodes."""
        health = f"/_cluster/health?wait_for_status=yellow&wait_for_nodes=>={self.size}&timeout=1s"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.url, path=health):
                return
            if self.pid() is None:
                break  # the launcher detached, then the node died
            time.sleep(0.5)
        raise LocalNodeError(f"Elasticsearch did not become healthy within {timeout:.0f}s.\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.launcher_log, self.log_file):
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} (last {len(tail)} lines) ---\n" + "\n".join(tail))
        return "\n".join(parts) or f"(no log written yet under {self.node_dir / 'logs'})"


@dataclass(frozen=True)
class ClusterStatus:
    nodes: list[NodeStatus] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    @property
    def es_url(self) -> str:
        """The value of RECMATCH_ES_URL that names every node."""
        return ",".join(node.url for node in self.nodes)

    def describe(self) -> str:
        if len(self.nodes) == 1:
            return self.nodes[0].describe()
        up = sum(node.running for node in self.nodes)
        lines = [f"Local cluster of {len(self.nodes)} nodes, {up} running "
                 f"(RECMATCH_ES_URL={self.es_url})"]
        lines += ["  " + node.describe().replace("\n", "\n  ") for node in self.nodes]
        return "\n".join(lines)


@dataclass(frozen=True)
class LocalCluster:
    """The local node, or N local nodes of one cluster on consecutive HTTP and transport ports.

    How many nodes run at a port is recorded next to the nodes (cluster-<port>.json), so `es status` and `es down`
    find them all without being told.
    """

    settings: Settings
    size: int | None = None  # None: what was recorded at `es up`, else RECMATCH_LOCAL_ES_NODES

    @property
    def record(self) -> Path:
        return self.settings.cache_dir / f"cluster-{self.settings.local_es_port}.json"

    def recorded_size(self) -> int | None:
        try:
            return int(json.loads(self.record.read_text())["nodes"])
        except (OSError, ValueError, KeyError):
            return None

    @property
    def nodes(self) -> list[LocalNode]:
        size = self.size or self.recorded_size() or self.settings.local_es_nodes
        return [LocalNode(self.settings, ordinal, size) for ordinal in range(size)]

    def status(self) -> ClusterStatus:
        return ClusterStatus([node.status() for node in self.nodes])

    def up(self, *, say: Say = print, timeout: float = 180.0) -> ClusterStatus:
        """Start every node that is not running, in parallel; wait until they form one healthy cluster. Idempotent."""
        nodes = self.nodes
        if len(nodes) == 1:
            nodes[0].up(say=say, timeout=timeout)
            self._write_record(1)
            return self.status()
        recorded = self.recorded_size()
        if recorded is not None and recorded != len(nodes) and any(
                node.pid() for node in LocalCluster(self.settings, recorded).nodes):
            raise LocalNodeError(
                f"a local cluster of {recorded} nodes runs from port {self.settings.local_es_port}; "
                "stop it with `recmatch es down` before starting one of another size"
            )
        self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.settings.cache_dir / ".node.lock"):
            self._write_record(len(nodes))
            stopped = [node for node in nodes if node.pid() is None]
            prepared = [(node, *node.prepare(say=say)) for node in stopped]
            for node, java_home, _ in prepared:
                say(f"Starting Elasticsearch {node.version} node {node.name} at {node.url} "
                    f"(transport {node.transport_port}, Java {java_home}, logs {node.log_file}) ...")
            # Launched together: a node waits for a quorum of master-eligible peers before it reports started.
            with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                for launched in [pool.submit(node.launch, java_home, user, timeout=timeout)
                                 for node, java_home, user in prepared]:
                    launched.result()
            for node in nodes:
                node.wait_healthy(timeout=timeout)
        status = self.status()
        say(f"Local cluster of {len(nodes)} nodes is up: RECMATCH_ES_URL={status.es_url}")
        return status

    def down(self, *, say: Say = print, timeout: float = 60.0) -> bool:
        """Stop every node by its pid; True when any was running."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            stopped = list(pool.map(lambda node: node.down(say=say, timeout=timeout), self.nodes))
        return any(stopped)

    def _write_record(self, size: int) -> None:
        self.record.write_text(json.dumps({"nodes": size, "first_http_port": self.settings.local_es_port}) + "\n")


def find_java(settings: Settings) -> Path:
    """A JDK >= 21: RECMATCH_JAVA_HOME, ES_JAVA_HOME, JAVA_HOME, then the JDKs installed on the system."""
    candidates = [settings.java_home, os.environ.get("ES_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    installed = sorted(Path("/usr/lib/jvm").glob("*"), key=lambda p: _java_major(p) or 0, reverse=True)
    checked = []
    for candidate in [*(Path(c) for c in candidates if c), *installed, *Path("/opt").glob("*jdk*")]:
        major = _java_major(candidate)
        checked.append(f"{candidate} ({'Java ' + str(major) if major else 'no JDK'})")
        if major is not None and major >= MIN_JAVA:
            return candidate
    raise LocalNodeError(
        f"Elasticsearch needs a JDK >= {MIN_JAVA}; none found. Checked: {', '.join(checked) or 'nothing'}. "
        f"Install one (e.g. apt-get install openjdk-{MIN_JAVA}-jdk-headless) or set ES_JAVA_HOME."
    )


def _java_major(home: Path) -> int | None:
    release = home / "release"
    if not (home / "bin" / "java").is_file() or not release.is_file():
        return None
    match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
    return int(match.group(1)) if match else None


def _answers(url: str, path: str = "/_cluster/health") -> bool:
    try:
        return httpx.get(url + path, timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
