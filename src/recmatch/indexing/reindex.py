"""Loading candidates: reindex into a new versioned index with an atomic alias swap; one-candidate upsert/erase."""

from __future__ import annotations

import gzip
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import elasticsearch
import orjson
from elasticsearch import Elasticsearch, helpers
from pydantic import ValidationError
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from recmatch.core.config import Settings
from recmatch.core.errors import Conflict, InvalidInput, NotFound, ReindexFailed
from recmatch.core.es import IndexNames, ensure_indices, load_mapping, map_es_errors
from recmatch.core.models import CandidateIn
from recmatch.indexing.documents import candidate_document
from recmatch.indexing.locks import Lock, cluster_lock
from recmatch.text.taxonomy import Taxonomy, get_taxonomy

Progress = Callable[[int, int], None]  # (source bytes read, documents indexed)

log = logging.getLogger("recmatch.indexing")

# Live writes whose clocks run a little behind ours are still replayed into a new index.
CLOCK_MARGIN = timedelta(seconds=60)
# Per item only what _send_chunk reads: the status says created (201) or replaced (200), and why one failed.
BULK_FILTER = "items.*.status,items.*.error.type,items.*.error.reason"
READ_BLOCK_BYTES = 1024 * 1024


@dataclass
class ReindexReport:
    """What a reindex did, for the CLI and for logs."""

    index: str
    source: Path
    lines: int = 0
    created: int = 0
    rejected: int = 0
    erased: int = 0
    duplicates: int = 0
    replayed: int = 0
    count: int = 0
    seconds: float = 0.0
    rejects_path: Path | None = None
    previous: str | None = None
    deleted: list[str] = field(default_factory=list)

    @property
    def docs_per_second(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


@dataclass
class _Chunk:
    body: bytearray = field(default_factory=bytearray)
    lines: list[int] = field(default_factory=list)


# -- the source file -----------------------------------------------------------------------------------


def read_source(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """Yield (line number, raw line, bytes of the file read so far), streaming; .gz is decompressed."""
    with path.open("rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
        number, rest = 0, b""
        # Splitting big blocks costs a third less than reading line by line.
        while block := stream.read(READ_BLOCK_BYTES):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            read = raw.tell()
            for line in lines:
                number += 1
                if line := line.strip():
                    yield number, line, read
        if rest := rest.strip():
            yield number + 1, rest, raw.tell()


def validation_reason(error: ValidationError) -> str:
    """A one-line reason naming each failing field."""
    parts = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        parts.append(f"{where}: {problem['msg']}" if where else problem["msg"])
    return "; ".join(parts)


# -- reindex -------------------------------------------------------------------------------------------


def reindex(
    *,
    es: Elasticsearch,
    settings: Settings,
    source: Path,
    rejects_path: Path,
    on_progress: Progress | None = None,
    taxonomy: Taxonomy | None = None,
) -> ReindexReport:
    """Load SOURCE into a new index and swap the candidates alias to it; the old index serves until then."""
    if not source.is_file():
        raise InvalidInput(f"source file {source} does not exist")
    names = IndexNames(settings.index_prefix)
    taxonomy = taxonomy or get_taxonomy()
    with map_es_errors("reindex"):
        ensure_indices(es, names, "erasures", "locks")
        with cluster_lock(es, index=names.locks, name="reindex", detail=str(source)) as lock:
            remove_partial_indices(es, names)
            started = datetime.now(UTC)
            index = names.candidates_version(started.strftime("%Y%m%d%H%M%S%f"))
            report = ReindexReport(index=index, source=source, rejects_path=rejects_path)
            _create_building_index(es, settings=settings, index=index, started=started, source=source)
            try:
                clock = time.perf_counter()
                _load(
                    es,
                    settings=settings,
                    index=index,
                    report=report,
                    taxonomy=taxonomy,
                    erased=erased_ids(es, names),
                    on_progress=_beating(lock, on_progress),
                )
                _check_rejects(report, settings.reindex_reject_threshold)
                since = started - CLOCK_MARGIN
                report.replayed += _replay_live_changes(es, names=names, index=index, since=since, taxonomy=taxonomy)
                _finish_index(es, settings=settings, index=index)
                report.count = int(es.count(index=index)["count"])
                if report.count != report.created + report.replayed:
                    raise ReindexFailed(
                        f"{index} holds {report.count} candidates but {report.created + report.replayed} "
                        "were written; the alias was not touched"
                    )
                report.seconds = time.perf_counter() - clock
                report.previous = _swap_alias(es, names=names, index=index)
            except BaseException:
                es.options(ignore_status=404).indices.delete(index=index)
                raise
            # Live writes that reached the old index between the replay and the swap.
            _replay_live_changes(es, names=names, index=index, since=since, taxonomy=taxonomy)
            report.deleted = _apply_retention(es, names=names, keep=settings.reindex_keep)
            return report


def _beating(lock: Lock, on_progress: Progress | None) -> Progress:
    def progress(done: int, docs: int) -> None:
        lock.beat()
        if on_progress is not None:
            on_progress(done, docs)

    return progress


def _create_building_index(
    es: Elasticsearch, *, settings: Settings, index: str, started: datetime, source: Path
) -> None:
    body = load_mapping("candidates", shards=settings.candidates_shards, replicas=0)
    # Bulk loading: no refreshes, no replicas, fsync the translog in the background.
    body["settings"]["index"].update({"refresh_interval": "-1", "translog.durability": "async"})
    body["mappings"]["_meta"].update({"status": "building", "started_at": started.isoformat(), "source": str(source)})
    es.indices.create(index=index, **body)


def _load(
    es: Elasticsearch,
    *,
    settings: Settings,
    index: str,
    report: ReindexReport,
    taxonomy: Taxonomy,
    erased: set[str],
    on_progress: Progress,
) -> None:
    """Validate, normalise and bulk-write every line; bulk requests run on worker threads."""
    indexed_at = datetime.now(UTC)
    action = orjson.dumps({"index": {"_index": index}})[:-2]  # reopened: _id is added per line
    rejects = _Rejects(report.rejects_path)
    in_flight: deque[Future[_ChunkResult]] = deque()

    def collect(*, keep: int) -> None:
        """Take in the finished chunks, waiting for the oldest while more than KEEP are in flight."""
        while in_flight and (len(in_flight) > keep or in_flight[0].done()):
            outcome = in_flight.popleft().result()
            report.created += outcome.created
            report.duplicates += outcome.updated
            report.rejected += len(outcome.refused)
            for line, reason in outcome.refused:
                rejects.add(line, reason)

    chunk = _Chunk()
    read = 0
    shard_wait = f"{settings.reindex_shard_wait_s:g}s"
    with ThreadPoolExecutor(max_workers=settings.reindex_threads, thread_name_prefix="bulk") as pool:
        try:
            for number, raw, read in read_source(report.source):
                report.lines += 1
                try:
                    candidate = CandidateIn.model_validate_json(raw)
                except ValidationError as exc:
                    rejects.add(number, validation_reason(exc), raw)
                    report.rejected += 1
                    continue
                if candidate.candidate_id in erased:
                    report.erased += 1
                    continue
                document = orjson.dumps(candidate_document(candidate, taxonomy=taxonomy, indexed_at=indexed_at))
                chunk.body += b'%s,"_id":%s}}\n%s\n' % (action, orjson.dumps(candidate.candidate_id), document)
                chunk.lines.append(number)
                if len(chunk.lines) >= settings.reindex_chunk_docs or len(chunk.body) >= settings.reindex_chunk_bytes:
                    in_flight.append(pool.submit(_send_chunk, es, chunk, shard_wait))
                    chunk = _Chunk()
                    # Enough queued that a thread never waits for the next chunk; no more, so memory stays flat.
                    collect(keep=2 * settings.reindex_threads)
                    on_progress(read, report.created)
            if chunk.lines:
                in_flight.append(pool.submit(_send_chunk, es, chunk, shard_wait))
            collect(keep=0)
            on_progress(read, report.created)
        finally:
            rejects.close()
            for future in in_flight:
                future.cancel()


@dataclass
class _ChunkResult:
    created: int = 0
    updated: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def _send_chunk(es: Elasticsearch, chunk: _Chunk, shard_wait: str = "1m") -> _ChunkResult:
    """Send one bulk request; retry the items pushed back with 429; report what each item became."""
    result = _ChunkResult()
    body, positions = bytes(chunk.body), list(range(len(chunk.lines)))

    def attempt() -> list[int]:
        nonlocal body, positions
        with map_es_errors("bulk write"):
            response = es.bulk(operations=body, filter_path=BULK_FILTER, timeout=shard_wait)
        retry = []
        for position, item in zip(positions, response["items"], strict=True):
            outcome = item["index"]
            status = outcome["status"]
            if status == 201:
                result.created += 1
            elif status < 300:
                result.updated += 1  # the same candidate_id earlier in the file: the later line wins
            elif status == 429:
                retry.append(position)
            elif status >= 500:
                # The cluster failed, not the line (a shard lost with its node): stop, never count it a reject.
                error = outcome.get("error", {})
                raise ReindexFailed(f"Elasticsearch could not write line {chunk.lines[position]} ({status} "
                                    f"{error.get('type')}: {error.get('reason')}); the alias was not touched")
            else:
                error = outcome.get("error", {})
                result.refused.append((chunk.lines[position], f"{error.get('type')}: {error.get('reason')}"))
        if retry:
            operations = _split_operations(chunk.body)
            body, positions = b"".join(operations[i] for i in retry), retry
        return retry

    retrying = Retrying(
        retry=retry_if_result(bool),
        wait=wait_exponential(multiplier=0.5, max=10),
        stop=stop_after_attempt(8),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    if retrying(attempt):
        raise ReindexFailed(f"Elasticsearch kept refusing {len(positions)} writes with 429 (too many requests)")
    return result


def _split_operations(body: bytearray) -> list[bytes]:
    """The bulk body as one byte string per (action, document) pair."""
    lines = bytes(body).split(b"\n")
    return [lines[i] + b"\n" + lines[i + 1] + b"\n" for i in range(0, len(lines) - 1, 2)]


class _Rejects:
    """The rejects file: one JSON line per refused source line, written only when there is one."""

    def __init__(self, path: Path | None) -> None:
        self.path, self._handle = path, None
        self.by_line: dict[int, str] = {}

    def add(self, line: int, reason: str, raw: bytes | None = None) -> None:
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("wb")
        record: dict[str, Any] = {"line": line, "reason": reason}
        if raw is not None:
            record["text"] = raw[:2000].decode("utf-8", "replace")
        self._handle.write(orjson.dumps(record) + b"\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _check_rejects(report: ReindexReport, threshold: float) -> None:
    if report.lines == 0:
        raise ReindexFailed(f"{report.source} holds no candidates")
    share = report.rejected / report.lines
    if share > threshold:
        raise ReindexFailed(
            f"{report.rejected} of {report.lines} lines were rejected ({share:.1%}, more than the "
            f"{threshold:.1%} allowed); see {report.rejects_path}. The alias was not touched."
        )


def _finish_index(es: Elasticsearch, *, settings: Settings, index: str) -> None:
    es.indices.put_settings(
        index=index,
        settings={
            "index": {
                "refresh_interval": None,
                "translog.durability": "request",
                "number_of_replicas": settings.candidates_replicas,
            }
        },
    )
    es.indices.refresh(index=index)
    if settings.candidates_replicas == 0:
        es.cluster.health(index=index, wait_for_status="yellow", timeout="60s")
        return
    # The alias moves only once every replica is built: a node lost right after the swap then costs no data.
    health = es.options(request_timeout=330).cluster.health(index=index, wait_for_status="green", timeout="300s")
    if health.get("timed_out"):
        raise ReindexFailed(
            f"the replicas of {index} were not all allocated within 300 s (health {health['status']}, "
            f"{settings.candidates_replicas} replicas on {health['number_of_data_nodes']} data nodes); "
            "the alias was not touched. Lower RECMATCH_CANDIDATES_REPLICAS or add nodes."
        )


def _swap_alias(es: Elasticsearch, *, names: IndexNames, index: str) -> str | None:
    """Point the alias at INDEX in one atomic request; returns the index it served before."""
    es.indices.put_mapping(index=index, meta={**_meta(es, index), "status": "complete"})
    previous = alias_target(es, names)
    actions: list[dict[str, Any]] = [{"add": {"index": index, "alias": names.candidates, "is_write_index": True}}]
    if previous is not None:
        actions.insert(0, {"remove": {"index": previous, "alias": names.candidates}})
    es.indices.update_aliases(actions=actions)
    return previous


def _meta(es: Elasticsearch, index: str) -> dict[str, Any]:
    return es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})


def alias_target(es: Elasticsearch, names: IndexNames) -> str | None:
    """The index the candidates alias serves, or None before the first load."""
    try:
        targets = list(es.indices.get_alias(name=names.candidates))
    except elasticsearch.NotFoundError:
        return None
    return targets[0] if targets else None


def candidate_indices(es: Elasticsearch, names: IndexNames) -> list[tuple[str, str]]:
    """(index, status) of every versioned candidates index, oldest first."""
    mappings = es.indices.get_mapping(index=names.candidates_pattern, allow_no_indices=True)
    return sorted((name, spec["mappings"].get("_meta", {}).get("status", "unknown")) for name, spec in mappings.items())


def remove_partial_indices(es: Elasticsearch, names: IndexNames) -> list[str]:
    """Delete what a killed reindex left behind (call it while holding the reindex lock)."""
    current = alias_target(es, names)
    partial = [name for name, status in candidate_indices(es, names) if status == "building" and name != current]
    for name in partial:
        es.options(ignore_status=404).indices.delete(index=name)
    return partial


def _apply_retention(es: Elasticsearch, *, names: IndexNames, keep: int) -> list[str]:
    current = alias_target(es, names)
    complete = [name for name, status in candidate_indices(es, names) if status == "complete"]
    older = [name for name in complete if current is not None and name < current]
    doomed = older[: max(len(older) - keep, 0)]
    for name in doomed:
        es.options(ignore_status=404).indices.delete(index=name)
    return doomed


def rollback(*, es: Elasticsearch, settings: Settings) -> tuple[str, str]:
    """Point the alias back at the newest complete index older than the current one."""
    names = IndexNames(settings.index_prefix)
    with map_es_errors("rollback"):
        ensure_indices(es, names, "erasures", "locks")
        with cluster_lock(es, index=names.locks, name="reindex", detail="rollback"):
            current = alias_target(es, names)
            if current is None:
                raise NotFound(f"the alias {names.candidates} does not exist yet: nothing to roll back")
            older = [n for n, status in candidate_indices(es, names) if status == "complete" and n < current]
            if not older:
                raise NotFound("no earlier index is kept to roll back to "
                               f"(RECMATCH_REINDEX_KEEP={settings.reindex_keep})")
            target = older[-1]
            es.indices.update_aliases(
                actions=[
                    {"remove": {"index": current, "alias": names.candidates}},
                    {"add": {"index": target, "alias": names.candidates, "is_write_index": True}},
                ]
            )
            return current, target


# -- live changes: one candidate at a time -------------------------------------------------------------


def ensure_candidates_alias(es: Elasticsearch, settings: Settings) -> str:
    """The alias's index; an empty one is created before the first reindex so reads and upserts work."""
    names = IndexNames(settings.index_prefix)
    with map_es_errors("preparing the candidates index"):
        ensure_indices(es, names, "erasures", "locks")
        current = alias_target(es, names)
        if current is not None:
            return current
        index = names.candidates_version(datetime.now(UTC).strftime("%Y%m%d%H%M%S%f"))
        body = load_mapping("candidates", shards=settings.candidates_shards, replicas=settings.candidates_replicas)
        body["mappings"]["_meta"]["status"] = "complete"
        es.indices.create(index=index, aliases={names.candidates: {"is_write_index": True}}, **body)
        return index


class CandidateErased(Conflict):
    """The candidate was erased; re-adding them needs an operator to lift the erasure on purpose."""


def upsert_candidate(
    *, es: Elasticsearch, settings: Settings, candidate: CandidateIn, taxonomy: Taxonomy | None = None,
    lift_erasure_by: str | None = None,
) -> dict[str, Any]:
    """Write one candidate to the live index now; a running reindex replays it before and after its swap.

    An erased candidate stays erased: only LIFT_ERASURE_BY (an operator, on purpose) re-adds them, and it is logged."""
    names = IndexNames(settings.index_prefix)
    ensure_candidates_alias(es, settings)
    with map_es_errors("upserting a candidate"):
        erased = es.options(ignore_status=404).get(index=names.erasures, id=candidate.candidate_id)
        if erased.get("found"):
            if lift_erasure_by is None:
                raise CandidateErased(
                    f"candidate {candidate.candidate_id!r} was erased on {erased['_source']['erased_at'][:10]}; "
                    "an upsert does not undo an erasure (an operator can lift it with ?lift_erasure=true)")
            log.warning("operator %s lifted the erasure of candidate %s (erased %s by %s)", lift_erasure_by,
                        candidate.candidate_id, erased["_source"].get("erased_at"), erased["_source"].get("erased_by"))
            es.delete(index=names.erasures, id=candidate.candidate_id, refresh=True)
        document = candidate_document(
            candidate, taxonomy=taxonomy or get_taxonomy(), indexed_at=datetime.now(UTC), live=True
        )
        es.index(index=names.candidates, id=candidate.candidate_id, document=document, refresh=True)
    return document


def erase_candidate(*, es: Elasticsearch, settings: Settings, candidate_id: str, erased_by: str = "admin") -> bool:
    """Erase a candidate everywhere now and for every later reindex; True when it was indexed."""
    names = IndexNames(settings.index_prefix)
    with map_es_errors("erasing a candidate"):
        ensure_indices(es, names, "erasures", "locks")
        # The erasure is recorded first, so a reindex running now will apply it before its swap.
        es.index(
            index=names.erasures,
            id=candidate_id,
            document={"candidate_id": candidate_id, "erased_at": datetime.now(UTC).isoformat(), "erased_by": erased_by},
            refresh=True,
        )
        if alias_target(es, names) is None:
            return False
        deleted = es.options(ignore_status=404).delete(index=names.candidates, id=candidate_id, refresh=True)
        return deleted.get("result") == "deleted"


def erased_ids(es: Elasticsearch, names: IndexNames) -> set[str]:
    """Every erased candidate id (erasures are few: kept in memory for the duration of a reindex)."""
    return {
        hit["_id"]
        for hit in helpers.scan(es, index=names.erasures, query={"query": {"match_all": {}}}, _source=False, size=5000)
    }


def _replay_live_changes(
    es: Elasticsearch, *, names: IndexNames, index: str, since: datetime, taxonomy: Taxonomy
) -> int:
    """Copy upserts and apply erasures made through the alias since SINCE into INDEX; returns docs created."""
    created = 0
    actions: list[dict[str, Any]] = []
    if alias_target(es, names) not in (None, index):
        recent = {"query": {"range": {"live_updated_at": {"gte": since.isoformat()}}}}
        for hit in helpers.scan(es, index=names.candidates, query=recent, size=1000):
            actions.append({"_op_type": "index", "_index": index, "_id": hit["_id"], "_source": hit["_source"]})
    recent_erasures = {"query": {"range": {"erased_at": {"gte": since.isoformat()}}}}
    for hit in helpers.scan(es, index=names.erasures, query=recent_erasures, _source=False, size=1000):
        actions.append({"_op_type": "delete", "_index": index, "_id": hit["_id"]})
    for ok, item in helpers.streaming_bulk(es, actions, raise_on_error=False, raise_on_exception=True):
        result = next(iter(item.values()))
        if result.get("result") == "created":
            created += 1
        elif result.get("result") == "deleted":
            created -= 1
        elif not ok and result.get("status") != 404:
            raise ReindexFailed(f"replaying a live change of {result.get('_id')} failed: {result.get('error')}")
    if actions:
        es.indices.refresh(index=index)
    return created
