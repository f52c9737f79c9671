"""The one way to talk to Elasticsearch: client factory, retries, error mapping, index names, mappings."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import elastic_transport
import elasticsearch
from elasticsearch import AsyncElasticsearch, Elasticsearch

from recmatch.core.config import Settings
from recmatch.core.errors import IncompatibleServer, NotFound, RecmatchError, SearchUnavailable

log = logging.getLogger("recmatch.es")

ClientT = TypeVar("ClientT", Elasticsearch, AsyncElasticsearch)
T = TypeVar("T")

CLIENT_MAJOR = int(elasticsearch.__versionstr__.split(".")[0])

# Per-request retries live in the official transport: it retries connection errors, timeouts and these
# statuses with jittered exponential backoff (retry_backoff_base/cap). Longer waits (a node starting,
# bulk items pushed back with 429) use tenacity where they happen.
# With several hosts in RECMATCH_ES_URL the transport's node pool sends requests round robin; a node that fails
# to connect is marked dead (and tried again after a growing timeout) and the retry goes to the next node.
# No sniffing: the hosts named are the hosts used (a managed cluster's load balancer, or loopback nodes).
RETRY_ON_STATUS = (429, 502, 503, 504)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by the sync and async clients."""
    options: dict[str, Any] = {
        "hosts": settings.es_hosts,
        "node_selector_class": "round_robin",
        "randomize_nodes_in_pool": True,  # many API processes do not all start on the same node
        "sniff_on_start": False,
        "sniff_on_node_failure": False,
        "request_timeout": settings.es_request_timeout,
        "max_retries": settings.es_max_retries,
        "retry_on_status": RETRY_ON_STATUS,
        "retry_on_timeout": True,
        "retry_backoff_base": settings.es_retry_backoff_base,
        "retry_backoff_cap": settings.es_retry_backoff_cap,
        "serializer": elasticsearch.serializer.OrjsonSerializer(),
        "http_compress": False,
    }
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    if settings.es_username is not None and settings.es_password is not None:
        options["basic_auth"] = (settings.es_username, settings.es_password.get_secret_value())
    if settings.es_ca_certs is not None:
        options["ca_certs"] = str(settings.es_ca_certs)
    if settings.es_url.startswith("https://"):
        options["verify_certs"] = settings.es_verify_certs
    return options


def make_client(settings: Settings, *, client_class: type[Elasticsearch] = Elasticsearch) -> Elasticsearch:
    """A synchronous client (CLI, scripts, reindex); the API passes an instrumented CLIENT_CLASS (ops.metrics)."""
    return client_class(**client_options(settings))


def make_async_client(
    settings: Settings, *, client_class: type[AsyncElasticsearch] = AsyncElasticsearch
) -> AsyncElasticsearch:
    """An asynchronous client (the API); the API passes an instrumented CLIENT_CLASS (ops.metrics)."""
    return client_class(**client_options(settings))


def run_with_async_client(settings: Settings, work: Callable[[AsyncElasticsearch, IndexNames], Awaitable[T]]) -> T:
    """Run an async service call, WORK(es, names), to the end with its own client: for synchronous callers (the CLI,
    scripts, tests)."""

    async def run() -> T:
        es = make_async_client(settings)
        try:
            return await work(es, IndexNames(settings.index_prefix))
        finally:
            await es.close()

    return asyncio.run(run())


async def first_out(first: Coroutine[Any, Any, Any], *others: Awaitable[Any]) -> tuple[Any, ...]:
    """asyncio.gather(FIRST, *OTHERS), with FIRST's request sent before theirs.

    gather starts every awaitable as a task of its own, each run on a later turn of the loop, in order; FIRST is run
    here at once instead, up to its request, while OTHERS wait their turn. For a search that takes longest, beside
    reads that take a millisecond: each call spends a fraction of a millisecond in the client before its request
    goes out. When FIRST fails, OTHERS are cancelled."""
    rest = [asyncio.ensure_future(other) for other in others]
    try:
        result = await first
    except BaseException:
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        raise
    return (result, *await asyncio.gather(*rest))


@contextmanager
def map_es_errors(what: str = "Elasticsearch call") -> Iterator[None]:
    """Translate client exceptions into recmatch errors, once, at the boundary."""
    try:
        yield
    except RecmatchError:
        raise
    except elasticsearch.ConflictError:
        raise  # optimistic concurrency: the caller retries or answers 409 itself
    except elasticsearch.NotFoundError as exc:
        raise NotFound(f"{what}: {_reason(exc)}") from exc
    except elasticsearch.ApiError as exc:
        if exc.error == "cluster_block_exception":  # e.g. a write block, or disk flood stage: lifted by an operator
            raise SearchUnavailable(f"{what}: the index does not accept writes now", retry_after=30) from exc
        if exc.meta.status in RETRY_ON_STATUS:
            raise SearchUnavailable(f"{what}: Elasticsearch is overloaded ({exc.meta.status})", retry_after=5) from exc
        raise RecmatchError(f"{what} failed: {_reason(exc)}") from exc
    except (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout) as exc:
        # The transport's message names the node's host and port: log it, never tell it to a caller.
        log.warning("%s: Elasticsearch is unreachable: %s", what, exc.message)
        kind = "timed out" if isinstance(exc, elastic_transport.ConnectionTimeout) else "is unreachable"
        raise SearchUnavailable(f"{what}: Elasticsearch {kind}", retry_after=5) from exc
    except elastic_transport.TransportError as exc:
        log.warning("%s: Elasticsearch transport error: %s", what, exc.message)
        raise SearchUnavailable(f"{what}: Elasticsearch is unavailable", retry_after=5) from exc


_IGNORING: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], Any]] = weakref.WeakKeyDictionary()


def ignoring(es: ClientT, *statuses: int) -> ClientT:
    """es.options(ignore_status=STATUSES), made once per client: each options() call builds a client (~0.1 ms)."""
    made = _IGNORING.setdefault(es, {})
    if statuses not in made:
        made[statuses] = es.options(ignore_status=list(statuses))
    return made[statuses]


def _reason(exc: elasticsearch.ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        root = (error.get("root_cause") or [error])[0]
        return f"{root.get('type', 'error')}: {root.get('reason', '')}".strip()
    return str(exc.message)


def server_version(es: Elasticsearch) -> str:
    """The version of the node we talk to (GET / where allowed, else the local node's info)."""
    try:
        return es.info()["version"]["number"]
    except elasticsearch.ApiError as exc:
        # The minimal integ-test distribution does not route GET /; node info gives the same answer.
        if exc.meta.status not in (404, 405):
            raise
    nodes = es.nodes.info(node_id="_local", metric="_none", filter_path="nodes.*.version")["nodes"]
    return next(iter(nodes.values()))["version"]


def check_server_version(es: Elasticsearch) -> str:
    """Fail with a clear message when the server's major differs from the client's."""
    with map_es_errors("reading the Elasticsearch version"):
        version = server_version(es)
    major = int(version.split(".")[0])
    if major != CLIENT_MAJOR:
        raise IncompatibleServer(
            f"Elasticsearch {version} is not supported by this recmatch (client {elasticsearch.__versionstr__}): "
            f"it needs a {CLIENT_MAJOR}.x cluster"
        )
    return version


@dataclass(frozen=True)
class IndexNames:
    """Every index and alias name, under one prefix."""

    prefix: str

    @property
    def candidates(self) -> str:
        """The alias every read and write of candidates goes through."""
        return f"{self.prefix}-candidates"

    @property
    def candidates_pattern(self) -> str:
        return f"{self.prefix}-candidates-v*"

    def candidates_version(self, stamp: str) -> str:
        return f"{self.prefix}-candidates-v{stamp}"

    # The plain indices, each written and read by one owning module only (docs/architecture.md).

    @property
    def erasures(self) -> str:
        """Candidate ids erased by an admin; every reindex applies them (owner: indexing)."""
        return self.index("erasures")

    @property
    def locks(self) -> str:
        """Cluster-wide locks, e.g. one reindex at a time (owner: indexing.locks)."""
        return self.index("locks")

    @property
    def pipelines(self) -> str:
        """Pipelines synced from the CRM, with what was understood and learned (owner: pipelines)."""
        return self.index("pipelines")

    @property
    def snapshots(self) -> str:
        """The ranked list of a pipeline version on a day (owner: snapshots.store)."""
        return self.index("snapshots")

    @property
    def actions(self) -> str:
        """What was done to a candidate for a pipeline: its status (owner: actions)."""
        return self.index("actions")

    @property
    def events(self) -> str:
        """Append-only hiring signals, read by Kibana (owner: actions)."""
        return self.index("events")

    @property
    def usage(self) -> str:
        """Monthly counts of limited actions per seat (owner: actions.quotas)."""
        return self.index("usage")

    @property
    def idempotency(self) -> str:
        """Stored answers to requests sent with an Idempotency-Key (owner: actions.idempotency)."""
        return self.index("idempotency")

    @property
    def outbox(self) -> str:
        """Webhook deliveries with their status and tries (owner: webhooks.outbox)."""
        return self.index("outbox")

    @property
    def crm_holdings(self) -> str:
        """Candidates a tenant's CRM already holds, by member id or profile URL (owner: accounts.holdings)."""
        return self.index("crm_holdings")

    @property
    def accounts(self) -> str:
        """Tenants, seats (API key hashes) and the server's signing secret (owner: accounts)."""
        return self.index("accounts")

    def index(self, name: str) -> str:
        """The name of a plain (non-aliased) index of this deployment, as index_mappings/<name>.json defines it."""
        return f"{self.prefix}-{name}"


def _mappings_dir() -> Path:
    package = Path(__file__).resolve().parents[1]
    installed = package / "index_mappings"  # inside a wheel (pyproject force-include)
    return installed if installed.is_dir() else package.parents[1] / "index_mappings"


@cache
def _read_mapping_file(name: str) -> str:
    path = _mappings_dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no index mapping named {name!r} in {path.parent}")
    return path.read_text(encoding="utf-8")


def load_mapping(name: str, *, shards: int | None = None, replicas: int | None = None) -> dict[str, Any]:
    """Settings and mappings of one index from index_mappings/NAME.json, with deployment overrides."""
    spec = json.loads(_read_mapping_file(name))
    body = {"settings": spec.get("settings", {}), "mappings": spec["mappings"]}
    index_settings = body["settings"].setdefault("index", {})
    if shards is not None:
        index_settings["number_of_shards"] = shards
    if replicas is not None:
        index_settings["number_of_replicas"] = replicas
    body["mappings"].setdefault("_meta", {})["mapping_version"] = spec["version"]
    return body


def mapping_names() -> list[str]:
    """The indices defined in index_mappings/."""
    return sorted(path.stem for path in _mappings_dir().glob("*.json"))


# Every index that is not the candidates alias: created from its mapping when missing.
PLAIN_INDICES = (
    "accounts", "pipelines", "events", "snapshots", "outbox", "erasures", "locks", "actions", "idempotency", "usage",
    "crm_holdings",
)


def ensure_indices(es: Elasticsearch, names: IndexNames, *mappings: str) -> None:
    """Create the named plain indices (default: all) from index_mappings/, or add the fields a newer mapping has."""
    for mapping in mappings or PLAIN_INDICES:
        if not _mappings_dir().joinpath(f"{mapping}.json").is_file():
            continue
        body = load_mapping(mapping)
        index = names.index(mapping)
        if not es.indices.exists(index=index):
            try:
                es.indices.create(index=index, **body)
            except elasticsearch.BadRequestError as exc:
                if exc.error != "resource_already_exists_exception":  # another process made it meanwhile
                    raise
            continue
        current = es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {}).get("mapping_version", 0)
        if current < body["mappings"]["_meta"]["mapping_version"]:
            # New versions only add fields, which Elasticsearch applies in place.
            try:
                es.indices.put_mapping(index=index, properties=body["mappings"]["properties"],
                                       meta=body["mappings"]["_meta"])
            except elasticsearch.BadRequestError as exc:
                raise RecmatchError(
                    f"{index} has fields that index_mappings/{mapping}.json types differently ({_reason(exc)}); "
                    "it was probably created before recmatch set it up: move its data elsewhere and delete it"
                ) from exc


async def delete_matching(es: AsyncElasticsearch, *, index: str, query: dict[str, Any]) -> int:
    """Delete every document QUERY matches, by id in bulk (core has no _delete_by_query); returns how many."""
    from elasticsearch.helpers import async_bulk, async_scan

    async def actions() -> Any:
        async for hit in async_scan(es, index=index, query={"query": query}, _source=False, size=1000):
            yield {"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]}

    with map_es_errors(f"deleting from {index}"):
        deleted, _ = await async_bulk(es, actions(), chunk_size=1000, raise_on_error=False, refresh=True)
    return int(deleted)
