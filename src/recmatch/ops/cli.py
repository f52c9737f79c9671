"""The `recmatch` command."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from recmatch.core.config import get_settings
from recmatch.core.errors import RecmatchError
from recmatch.webhooks.formats import DEFAULT_FORMAT, format_names

app = typer.Typer(help="recmatch: Recommended Matches for recruiting CRMs.", no_args_is_help=True)
es_app = typer.Typer(help="The local Elasticsearch node (for machines without Docker).", no_args_is_help=True)
app.add_typer(es_app, name="es")

console = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def _reported() -> Iterator[None]:
    """Print recmatch errors as one clear line and exit non-zero, instead of a traceback."""
    try:
        yield
    except RecmatchError as exc:
        console.print(f"[bold red]error[/] ({exc.type}): {exc.detail}", highlight=False)
        raise typer.Exit(1) from None


def _run(action: Callable[[], T]) -> T:
    with _reported():
        return action()


# -- es ------------------------------------------------------------------------------------------------


@es_app.command("up")
def es_up(
    nodes: Annotated[int | None, typer.Option(min=1, max=9, help="nodes of one local cluster (default: "
                                              "RECMATCH_LOCAL_ES_NODES, 1)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for health")] = 180.0,
) -> None:
    """Fetch (once) and start a local Elasticsearch on 127.0.0.1: one node, or N nodes of one cluster on
    consecutive ports; reuse what runs."""
    from recmatch.ops.localnode import LocalCluster

    settings = get_settings()
    cluster = LocalCluster(settings, nodes or settings.local_es_nodes)
    status = _run(lambda: cluster.up(say=console.print, timeout=timeout))
    console.print(status.describe(), highlight=False)


@es_app.command("down")
def es_down() -> None:
    """Stop the local node, or every node of the local cluster."""
    from recmatch.ops.localnode import LocalCluster

    _run(lambda: LocalCluster(get_settings()).down(say=console.print))


@es_app.command("status")
def es_status() -> None:
    """Say whether the local node(s) run, and where the logs are; exit 1 when any does not."""
    from recmatch.ops.localnode import LocalCluster

    status = LocalCluster(get_settings()).status()
    typer.echo(status.describe())
    raise typer.Exit(0 if status.running else 1)


# -- reindex -------------------------------------------------------------------------------------------


class _DocsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        docs = task.fields.get("docs", 0)
        elapsed = task.elapsed or 0.0
        rate = docs / elapsed if elapsed > 0 else 0.0
        return Text(f"{docs:,} docs  {rate:,.0f} docs/s", style="progress.data.speed")


@app.command()
def reindex(
    source: Annotated[Path | None, typer.Option(help="candidates as JSON Lines (.jsonl or .jsonl.gz)")] = None,
    rejects: Annotated[Path | None, typer.Option(
        help="where rejected lines go [default: SOURCE name + .rejects.jsonl in the current folder]")] = None,
    threshold: Annotated[float | None, typer.Option(
        min=0, max=1, help="largest share of rejected lines that still swaps")] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="point the alias back at the previous index")] = False,
) -> None:
    """Load candidates into a new index and swap the alias to it atomically (or roll back)."""
    from recmatch.core.es import make_client
    from recmatch.indexing import reindex as indexing

    settings = get_settings()
    if threshold is not None:
        settings = settings.model_copy(update={"reindex_reject_threshold": threshold})
    es = make_client(settings)
    if rollback:
        before, after = _run(lambda: indexing.rollback(es=es, settings=settings))
        console.print(f"Rolled back: the alias now serves [bold]{after}[/] (was {before}).")
        return
    if source is None:
        raise typer.BadParameter("give --source FILE, or --rollback", param_hint="--source")
    rejects = rejects or Path.cwd() / (source.name.removesuffix(".gz").removesuffix(".jsonl") + ".rejects.jsonl")
    columns = (
        TextColumn("[bold]reindex[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        _DocsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("reindex", total=source.stat().st_size if source.is_file() else None, docs=0)
        report = _run(
            lambda: indexing.reindex(
                es=es,
                settings=settings,
                source=source,
                rejects_path=rejects,
                on_progress=lambda done, docs: bar.update(task, completed=done, docs=docs),
            )
        )
    table = Table(show_header=False, box=None)
    for label, value in (
        ("alias", f"{settings.index_prefix}-candidates → {report.index}"),
        ("candidates", f"{report.count:,} ({report.docs_per_second:,.0f} docs/s, {report.seconds:.1f} s)"),
        ("lines read", f"{report.lines:,}"),
        ("rejected", f"{report.rejected:,}" + (f" (see {report.rejects_path})" if report.rejected else "")),
        ("skipped as erased", f"{report.erased:,}"),
        ("repeated ids", f"{report.duplicates:,} (the later line won)"),
        ("live changes replayed", f"{report.replayed:,}"),
        ("previous index", report.previous or "none"),
        ("deleted", ", ".join(report.deleted) or "none"),
    ):
        table.add_row(label, value)
    console.print(table)


# -- sample --------------------------------------------------------------------------------------------


@app.command()
def sample(title: Annotated[str, typer.Argument(help="a job title to search for")] = "software engineer") -> None:
    """Print the alias, its count and the top candidates for a title (a quick look at the index)."""
    from recmatch.core.es import IndexNames, make_client, map_es_errors
    from recmatch.text.normalize import normalize_title

    settings = get_settings()
    names = IndexNames(settings.index_prefix)
    es = make_client(settings)

    def look() -> None:
        with map_es_errors("sample search"):
            index = next(iter(es.indices.get_alias(name=names.candidates)))
            count = es.count(index=names.candidates)["count"]
            hits = es.search(
                index=names.candidates,
                query={"match": {"title_norm": normalize_title(title)}},
                size=5,
                source=["name", "title", "company", "location.name"],
            )["hits"]["hits"]
        typer.echo(f"alias {names.candidates} → {index}: {count:,} candidates")
        typer.echo(f"top candidates for {title!r}:")
        for hit in hits:
            doc = hit["_source"]
            where = doc.get("location", {}).get("name", "")
            typer.echo(f"  {hit['_score']:6.2f}  {doc['name']} — {doc['title']} at {doc.get('company', '?')} ({where})")

    _run(look)


# -- accounts ------------------------------------------------------------------------------------------

tenants_app = typer.Typer(help="Tenants (one per CRM customer).", no_args_is_help=True)
seats_app = typer.Typer(help="Seats (one per CRM user) and their API keys.", no_args_is_help=True)
taxonomy_app = typer.Typer(help="The title and skill taxonomy.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(seats_app, name="seats")
operators_app = typer.Typer(help="Operators: who may write the candidate pool every tenant shares.",
                            no_args_is_help=True)
app.add_typer(operators_app, name="operators")
app.add_typer(taxonomy_app, name="taxonomy")


def _with_async_es(work: Callable[..., Any]) -> Any:
    """Run an async service function with a fresh async client and the cluster's indices in place."""
    from recmatch.core.es import run_with_async_client
    from recmatch.ops.cluster import prepare_cluster

    settings = get_settings()

    def run() -> Any:
        prepare_cluster(settings)
        return run_with_async_client(settings, work)

    return _run(run)


def _known_format(name: str) -> str:
    if name not in format_names():
        raise typer.BadParameter(f"{name!r} is not a webhook format; choose one of {', '.join(format_names())}")
    return name


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Option(help="the customer's name")],
    crm: Annotated[str, typer.Option(help="CRM provider, e.g. salesforce, bullhorn, greenhouse")] = "demo-crm",
    tenant_id: Annotated[str | None, typer.Option(help="a fixed id [default: generated]")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="where CRM events are delivered")] = None,
    messaging_webhook_url: Annotated[str | None, typer.Option(help="where InMails are delivered")] = None,
    crm_origin: Annotated[list[str] | None, typer.Option(help="an origin allowed to frame the widget (repeat)")] = None,
    integration_enabled: Annotated[bool, typer.Option(help="the CRM integration is on")] = True,
    crm_supports_matches: Annotated[bool, typer.Option(help="the CRM supports Recommended Matches")] = True,
    webhook_format: Annotated[str, typer.Option(callback=_known_format,
                                                help="how webhooks are shaped (webhooks/formats)")] = DEFAULT_FORMAT,
) -> None:
    """Create a tenant and print its id and webhook signing secret (shown once)."""
    from recmatch.accounts import service as accounts

    tenant = _with_async_es(lambda es, names: accounts.create_tenant(
        es=es, names=names, name=name, crm_provider=crm, tenant_id=tenant_id, webhook_url=webhook_url,
        messaging_webhook_url=messaging_webhook_url, crm_origins=crm_origin or [],
        integration_enabled=integration_enabled, crm_supports_matches=crm_supports_matches,
        webhook_format=webhook_format,
    ))
    typer.echo(f"tenant_id: {tenant.tenant_id}")
    typer.echo(f"webhook_secret: {tenant.webhook_secret.get_secret_value()}")


@tenants_app.command("update")
def tenants_update(
    tenant_id: Annotated[str, typer.Option(help="the tenant to change")],
    webhook_url: Annotated[str | None, typer.Option(help="where CRM events are delivered ('' clears)")] = None,
    messaging_webhook_url: Annotated[str | None, typer.Option(help="where InMails are delivered ('' clears)")] = None,
    crm_origin: Annotated[list[str] | None, typer.Option(
        help="an exact origin allowed to frame the widget, scheme://host[:port] (repeat; replaces the list)")] = None,
    clear_crm_origins: Annotated[bool, typer.Option("--clear-crm-origins", help="no origin may frame it")] = False,
    integration_enabled: Annotated[bool | None, typer.Option(help="turn the CRM integration on or off")] = None,
    crm_supports_matches: Annotated[bool | None, typer.Option(help="the CRM supports Recommended Matches")] = None,
) -> None:
    """Change a tenant's webhook URLs, CRM origins or flags (checked like at creation); prints what it is now."""
    from recmatch.accounts import service as accounts

    changes: dict[str, Any] = {"webhook_url": webhook_url, "messaging_webhook_url": messaging_webhook_url,
                               "integration_enabled": integration_enabled,
                               "crm_supports_matches": crm_supports_matches}
    changes = {field: value for field, value in changes.items() if value is not None}
    if crm_origin or clear_crm_origins:
        changes["crm_origins"] = [] if clear_crm_origins else crm_origin
    if not changes:
        raise typer.BadParameter("nothing to change: give at least one option")
    tenant = _with_async_es(lambda es, names: accounts.update_tenant(es=es, names=names, tenant_id=tenant_id,
                                                                     **changes))
    typer.echo(f"tenant_id: {tenant.tenant_id}")
    typer.echo(f"webhook_url: {tenant.webhook_url or ''}")
    typer.echo(f"messaging_webhook_url: {tenant.messaging_webhook_url or ''}")
    typer.echo(f"crm_origins: {' '.join(tenant.crm_origins)}")
    typer.echo(f"integration_enabled: {tenant.integration_enabled}")


@operators_app.command("create")
def operators_create(email: Annotated[str, typer.Option(help="the operator's email")]) -> None:
    """Create an operator (may write and erase the shared candidate pool) and print its key once."""
    from recmatch.accounts import operators

    operator, api_key = _with_async_es(lambda es, names: operators.create_operator(es=es, names=names, email=email))
    typer.echo(f"operator_id: {operator.operator_id}")
    typer.echo(f"operator_key: {api_key}")


@seats_app.command("create")
def seats_create(
    tenant_id: Annotated[str, typer.Option(help="the seat's tenant")],
    email: Annotated[str, typer.Option(help="the CRM user's email")],
    license: Annotated[str, typer.Option(help="recruiter | hiring_collaborator | admin")] = "recruiter",
) -> None:
    """Create a seat and print its API key once (only its hash is stored)."""
    from recmatch.accounts import service as accounts

    try:
        seat_license = accounts.License(license)
    except ValueError:
        raise typer.BadParameter("recruiter, hiring_collaborator or admin", param_hint="--license") from None
    seat, api_key = _with_async_es(lambda es, names: accounts.create_seat(
        es=es, names=names, tenant_id=tenant_id, email=email, license=seat_license))
    typer.echo(f"seat_id: {seat.seat_id}")
    typer.echo(f"api_key: {api_key}")


@taxonomy_app.command("import")
def taxonomy_import(
    onet: Annotated[Path, typer.Option(help="folder of the O*NET text files", exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option(help="where to write the taxonomy JSON")] = Path("var/taxonomy-onet.json"),
) -> None:
    """Build a full taxonomy from the official O*NET files; use it with RECMATCH_TAXONOMY_PATH."""
    from recmatch.text.taxonomy import import_onet, write_taxonomy

    started = time.perf_counter()
    data = import_onet(onet)
    write_taxonomy(data, out)
    console.print(f"wrote {len(data['occupations']):,} occupations to {out} in {time.perf_counter() - started:.1f} s")
    console.print(f"use it: export RECMATCH_TAXONOMY_PATH={out.resolve()}  (then reindex, so candidates get its codes)")


# -- serving -------------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="processes")] = 1,
) -> None:
    """Run the API (uvicorn)."""
    import uvicorn

    from recmatch.ops import logs, metrics

    metrics.prepare_metrics_dir(workers)  # several processes share one set of metrics
    uvicorn.run("recmatch.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=True, log_config=logs.uvicorn_log_config())


@app.command()
def refresh(
    active_days: Annotated[int, typer.Option(min=1, help="pipelines used within this many days")] = 30,
) -> None:
    """Compute today's snapshot of every pipeline used recently (run it daily, e.g. from cron)."""
    from datetime import UTC, datetime

    from recmatch.matches.refresh import refresh_active

    today = datetime.now(UTC).date()
    computed, kept = _with_async_es(
        lambda es, names: refresh_active(es=es, names=names, today=today, active_days=active_days))
    console.print(f"refreshed {today}: {computed} snapshots computed, {kept} already there")


@app.command()
def purge(
    days: Annotated[int | None, typer.Option(
        min=1, help="keep this many days [default: RECMATCH_PERSONAL_DATA_RETENTION_DAYS]")] = None,
) -> None:
    """Delete personal data past its retention: finished outbox entries and events (run it daily, e.g. from cron)."""
    from datetime import UTC, datetime, timedelta

    from recmatch.actions.service import purge_events
    from recmatch.webhooks.outbox import purge_finished

    keep = days or get_settings().personal_data_retention_days
    before = datetime.now(UTC) - timedelta(days=keep)

    async def work(es: Any, names: Any) -> tuple[int, int]:
        return (await purge_finished(es=es, names=names, before=before),
                await purge_events(es=es, names=names, before=before))

    deliveries, events = _with_async_es(work)
    console.print(f"kept {keep} days: deleted {deliveries} finished deliveries and {events} events "
                  f"from before {before:%Y-%m-%d %H:%M} UTC")


DEMO_TENANT = "demo"
DEMO_PIPELINE = {"title": "Senior Backend Engineer", "locations": ["Austin, TX", "Remote"],
                 "skills": ["Python", "PostgreSQL", "Kubernetes"], "remote_ok": True, "radius_km": 80}


@app.command()
def demo(
    source: Annotated[Path, typer.Option(help="demo candidates, loaded when the index is empty or --reload")],
    reload: Annotated[bool, typer.Option("--reload", help="reindex even when candidates are loaded")] = False,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="run the API at the end")] = True,
) -> None:
    """Demo data, a demo tenant with an admin seat, a synced demo pipeline; prints a key and a curl, then serves."""
    from recmatch.accounts import service as accounts
    from recmatch.core.es import IndexNames, make_client
    from recmatch.core.models import PipelineIn
    from recmatch.indexing import reindex as indexing
    from recmatch.pipelines import service as pipelines
    from recmatch.text.taxonomy import get_taxonomy

    settings = get_settings()
    es = make_client(settings)
    names = IndexNames(settings.index_prefix)
    _run(lambda: indexing.ensure_candidates_alias(es, settings))
    if reload or es.count(index=names.candidates)["count"] == 0:
        reindex(source=source, rejects=Path("var/demo.rejects.jsonl"), threshold=None, rollback=False)

    async def prepare(es_async: Any, names: IndexNames) -> tuple[str, str]:
        try:
            tenant = await accounts.get_tenant(es=es_async, names=names, tenant_id=DEMO_TENANT)
        except RecmatchError:
            tenant = await accounts.create_tenant(es=es_async, names=names, tenant_id=DEMO_TENANT, name="Demo Staffing",
                                                  crm_provider="demo-crm", crm_origins=[f"http://{host}:{port}"])
        seat, api_key = await accounts.create_seat(es=es_async, names=names, tenant_id=tenant.tenant_id,
                                                   email="demo-admin@example.com", license=accounts.License.admin)
        await pipelines.put_pipeline(es=es_async, names=names, principal=accounts.Principal(tenant=tenant, seat=seat),
                                     crm_pipeline_id="demo-backend", pipeline=PipelineIn(**DEMO_PIPELINE),
                                     taxonomy=get_taxonomy())
        return tenant.tenant_id, api_key

    tenant_id, api_key = _with_async_es(prepare)
    base = f"http://{host}:{port}"
    typer.echo(f"""
recmatch demo is ready (tenant {tenant_id!r}, an admin seat).
  API key:   {api_key}
  Sandbox:   {base}/sandbox   (plays the CRM: edit the pipeline, use the framed widget)
  API docs:  {base}/docs
  Try it:    curl -s -H 'Authorization: Bearer {api_key}' '{base}/v1/pipelines/demo-backend/matches?page_size=5'
  Sync one:  curl -s -X PUT -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
               -d '{{"title": "Registered Nurse", "locations": ["Boston, MA"], "skills": ["Epic"]}}' \\
               '{base}/v1/pipelines/demo-nurse'
""")
    if serve_api:
        # The sandbox plays the demo tenant's CRM; it is off unless a demo turns it on.
        os.environ.update({"RECMATCH_SANDBOX_ENABLED": "true", "RECMATCH_SANDBOX_TENANT": tenant_id,
                           "RECMATCH_PUBLIC_BASE_URL": base})
        get_settings.cache_clear()
        serve(host=host, port=port, workers=1)


# -- deliver -------------------------------------------------------------------------------------------


@app.command()
def deliver(
    once: Annotated[bool, typer.Option("--once", help="one round, print the counts, exit")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="entries per round")] = 50,
    worker_id: Annotated[str | None, typer.Option(help="name in claims [default: host-pid-random]")] = None,
) -> None:
    """Send due webhook deliveries (the outbox) until stopped with Ctrl-C or SIGTERM."""
    import logging
    import signal

    from recmatch.webhooks import worker as delivery

    settings = get_settings()
    name = worker_id or delivery.default_worker_id()

    async def one_round(es: Any, names: Any) -> delivery.DeliveryRound:
        async with delivery.make_http_client() as http:
            return await delivery.deliver_due(es=es, names=names, settings=settings, worker_id=name, http=http,
                                              limit=limit)

    if once:
        done = _with_async_es(one_round)
        console.print(f"delivery round: {done.describe()}", highlight=False)
        raise typer.Exit(1 if done.errors else 0)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("elastic_transport", "httpx"):  # a line per request; recmatch.delivery logs each delivery
        logging.getLogger(chatty).setLevel(logging.WARNING)

    async def forever(es: Any, names: Any) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await delivery.run_worker(es=es, names=names, settings=settings, stop=stop, worker_id=name, limit=limit)

    _with_async_es(forever)


# -- kibana --------------------------------------------------------------------------------------------

kibana_app = typer.Typer(help="Kibana: recmatch's data views, dashboard and saved searches.", no_args_is_help=True)
app.add_typer(kibana_app, name="kibana")


@kibana_app.command("import")
def kibana_import(
    url: Annotated[str, typer.Option(help="Kibana's base URL")] = "http://127.0.0.1:5601",
    file: Annotated[Path | None, typer.Option(help="NDJSON file", show_default="kibana/recmatch.ndjson")] = None,
    prefix: Annotated[str | None, typer.Option(help="index prefix", show_default="RECMATCH_INDEX_PREFIX")] = None,
    space: Annotated[str | None, typer.Option(help="a Kibana space", show_default="the default space")] = None,
    keep_existing: Annotated[bool, typer.Option(help="leave objects that already exist as they are")] = False,
    wait: Annotated[float, typer.Option(help="seconds to wait for Kibana to be ready")] = 0.0,
    api_key: Annotated[str | None, typer.Option(envvar="KIBANA_API_KEY", help="a Kibana API key")] = None,
    username: Annotated[str | None, typer.Option(envvar="KIBANA_USERNAME", help="a Kibana user")] = None,
    password: Annotated[str | None, typer.Option(envvar="KIBANA_PASSWORD", help="that user's password")] = None,
) -> None:
    """Load the data views, the hiring-signals dashboard and the dead-deliveries search into Kibana."""
    from recmatch.ops import kibana

    objects = file or kibana.DEFAULT_OBJECTS
    if not objects.is_file():
        raise typer.BadParameter(f"no such file: {objects}", param_hint="--file")
    result = _run(lambda: kibana.import_saved_objects(
        url=url, objects=objects, prefix=prefix or get_settings().index_prefix, space=space,
        overwrite=not keep_existing, wait=wait, api_key=api_key, username=username, password=password))
    console.print(f"{result.describe()} into {url}", highlight=False)
    console.print(f"dashboard: {url.rstrip('/')}{f'/s/{space}' if space else ''}/app/dashboards", highlight=False)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
