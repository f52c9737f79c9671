"""Cluster-wide locks held as documents in Elasticsearch, kept alive by a heartbeat."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import elasticsearch
from elasticsearch import Elasticsearch

from recmatch.core.errors import Conflict

HEARTBEAT_EVERY = 15.0


class Lock:
    """A held lock; call `beat()` often, it writes at most every HEARTBEAT_EVERY seconds."""

    def __init__(self, es: Elasticsearch, *, index: str, name: str, owner: str) -> None:
        self.es, self.index, self.name, self.owner = es, index, name, owner
        self._last_beat = time.monotonic()

    def beat(self) -> None:
        if time.monotonic() - self._last_beat < HEARTBEAT_EVERY:
            return
        self.es.update(index=self.index, id=self.name, doc={"heartbeat_at": _now()})
        self._last_beat = time.monotonic()


@contextmanager
def cluster_lock(
    es: Elasticsearch, *, index: str, name: str, detail: str = "", stale_after: float = 120.0
) -> Iterator[Lock]:
    """Hold the lock NAME for the duration of the block, or raise Conflict naming its holder."""
    owner = uuid.uuid4().hex
    record = {
        "owner": owner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "acquired_at": _now(),
        "heartbeat_at": _now(),
        "detail": detail,
    }
    try:
        es.index(index=index, id=name, document=record, op_type="create", refresh=True)
    except elasticsearch.ConflictError:
        held = es.get(index=index, id=name)
        if not _is_stale(held["_source"], stale_after):
            holder = held["_source"]
            raise Conflict(
                f"{name} is already running (host {holder['host']}, pid {holder['pid']}, "
                f"since {holder['acquired_at']}); wait for it or stop it"
            ) from None
        try:  # take over a lock whose holder died, unless someone else just did
            es.index(
                index=index,
                id=name,
                document=record,
                if_seq_no=held["_seq_no"],
                if_primary_term=held["_primary_term"],
                refresh=True,
            )
        except elasticsearch.ConflictError:
            raise Conflict(f"{name} was just started by another process") from None
    try:
        yield Lock(es, index=index, name=name, owner=owner)
    finally:
        try:
            es.delete(index=index, id=name, refresh=True)
        except elasticsearch.NotFoundError:
            pass


def _is_stale(holder: dict, stale_after: float) -> bool:
    if holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", 0))):
        return True
    beat = datetime.fromisoformat(holder["heartbeat_at"])
    return datetime.now(UTC) - beat > timedelta(seconds=stale_after)


def pid_alive(pid: int) -> bool:
    """A process with this pid runs on this host (owned by any user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat()
