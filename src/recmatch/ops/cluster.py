"""Bootstrap a cluster for recmatch: check the server's major and create whatever index or alias is missing."""

from __future__ import annotations

from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, check_server_version, ensure_indices, make_client
from recmatch.indexing.reindex import ensure_candidates_alias


def prepare_cluster(settings: Settings) -> None:
    """Check the server's major version and create missing indices (synchronous: runs once at start)."""
    es = make_client(settings)
    try:
        check_server_version(es)
        ensure_indices(es, IndexNames(settings.index_prefix))
        ensure_candidates_alias(es, settings)
    finally:
        es.close()
