"""How long hiring signals are kept: events older than RECMATCH_PERSONAL_DATA_RETENTION_DAYS are deleted (what
the ranking learned from them stays, as counts in the pipeline, without the candidates' features)."""

from __future__ import annotations

from datetime import datetime

from elasticsearch import AsyncElasticsearch

from recmatch.core.es import IndexNames, delete_matching


async def purge_events(*, es: AsyncElasticsearch, names: IndexNames, before: datetime) -> int:
    """Delete events that happened before BEFORE."""
    return await delete_matching(es, index=names.index("events"),
                                 query={"range": {"at": {"lt": before.isoformat()}}})
