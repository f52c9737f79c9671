"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from recmatch.accounts.service import KeyCache
from recmatch.actions import completion
from recmatch.api.errors import Problem, install_error_handlers
from recmatch.api.limits import BodyLimit
from recmatch.api.routes import account, actions, admin, crm_candidates, deliveries, health, sandbox, share, widget
from recmatch.api.routes import pipelines as pipeline_routes
from recmatch.core.config import Settings, get_settings
from recmatch.core.errors import SearchUnavailable
from recmatch.core.es import IndexNames, make_async_client, make_client
from recmatch.matches.memory import ListMemory
from recmatch.ops import observability
from recmatch.ops.cluster import prepare_cluster
from recmatch.ops.metrics import InstrumentedAsyncElasticsearch, InstrumentedElasticsearch
from recmatch.text import geo
from recmatch.text.taxonomy import Taxonomy
from recmatch.webhooks import worker as delivery

log = logging.getLogger("recmatch.api")

DESCRIPTION = """
Recommended Matches for recruiting CRMs: sync a talent pipeline, get up to 125 ranked candidates with the
reasons they match. Every call takes `Authorization: Bearer <seat API key>`. Errors are one shape:
`{"type": "<ErrorName>", "detail": "<human sentence>"}`; 503 answers carry `Retry-After`.
"""


async def _prepare_until_done(app: FastAPI, settings: Settings, tried: asyncio.Event) -> None:
    """Prepare the cluster, retrying while Elasticsearch is unreachable, then mark the app ready.

    Until then /readyz answers 503, so no request writes to an index before its mapping exists (Elasticsearch would
    otherwise create it with guessed field types)."""
    delay = 1.0
    while True:
        try:
            await asyncio.to_thread(prepare_cluster, settings)
            app.state.cluster_prepared = True
            return
        except SearchUnavailable as exc:
            log.warning("Elasticsearch is not reachable yet: %s; retrying in %.0f s", exc.detail, delay)
        finally:
            tried.set()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.cluster_prepared = False
        tried = asyncio.Event()
        preparing = asyncio.create_task(_prepare_until_done(app, settings, tried), name="recmatch-prepare-cluster")
        await tried.wait()  # the first try; if ES is down, serve anyway (503s, readiness red) while it retries
        app.state.settings = settings
        app.state.taxonomy = await asyncio.to_thread(Taxonomy.load, settings.taxonomy_path)
        await asyncio.to_thread(geo.warm)  # in the start-up, not in the first request that names a place
        # The taxonomy and the gazetteer live as long as the process: keep their objects out of the collector's
        # full passes (one took 50-75 ms here with them in it).
        gc.freeze()
        app.state.es = make_async_client(settings, client_class=InstrumentedAsyncElasticsearch)
        app.state.sync_es = make_client(settings, client_class=InstrumentedElasticsearch)
        app.state.secret = None
        app.state.key_cache = KeyCache(ttl=settings.auth_cache_seconds,
                                       failed_per_second=settings.auth_failed_lookups_per_second)
        app.state.list_memory = ListMemory()  # what this process remembers of pipelines and lists (matches.memory)
        names = IndexNames(settings.index_prefix)
        try:
            async with AsyncExitStack() as background:
                if settings.delivery_in_api:
                    await background.enter_async_context(
                        delivery.background_worker(es=app.state.es, names=names, settings=settings))
                    # Alongside the worker (both off for tests that drive them by hand).
                    await background.enter_async_context(
                        completion.background_sweeper(es=app.state.es, names=names, settings=settings))
                yield
        finally:
            preparing.cancel()
            await app.state.es.close()
            app.state.sync_es.close()

    # Validation errors answer {"type", "detail"} like every other error: document that, not FastAPI's default.
    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from the package, so they work with no network.
    app = FastAPIOffline(title="recmatch", version="1", description=DESCRIPTION, lifespan=lifespan,
                         responses={422: {"model": Problem}}, static_url="/docs-static")
    install_error_handlers(app)
    observability.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)  # added last: runs first, before any parsing
    app.mount("/widget/static", StaticFiles(directory=widget.STATIC_DIR, check_dir=False), name="widget-static")
    for router in (health.router, account.router, pipeline_routes.router, actions.router, widget.router, sandbox.router,
                   admin.router, deliveries.router, share.router, crm_candidates.router):
        app.include_router(router)
    return app
