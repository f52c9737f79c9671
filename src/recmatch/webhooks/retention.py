"""How long the outbox keeps what it sent: delivered and dead entries (InMail bodies, shared contact details) are
deleted once they are older than RECMATCH_PERSONAL_DATA_RETENTION_DAYS."""

from __future__ import annotations

from datetime import datetime

from elasticsearch import AsyncElasticsearch

from recmatch.core.es import IndexNames, delete_matching


async def purge_outbox(*, es: AsyncElasticsearch, names: IndexNames, before: datetime) -> int:
    """Delete finished deliveries created before BEFORE; pending ones stay until they finish."""
    return await delete_matching(es, index=names.index("outbox"), query={"bool": {"filter": [
        {"terms": {"status": ["delivered", "dead"]}}, {"range": {"created_at": {"lt": before.isoformat()}}}]}})
