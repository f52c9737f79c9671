"""Schemathesis against recmatch's OpenAPI on a served API and a real Elasticsearch: server errors (5xx) expected: 0.

It prepares everything under an index prefix of its own (a small candidate pool loaded by a real reindex, a tenant
with an admin seat, two pipelines), runs `recmatch serve` on a free loopback port, runs `schemathesis run` with the
seat's key against /openapi.json (every operation, positive and negative data, all four phases: examples, coverage,
fuzzing, stateful), prints the figures and removes its indices. Path parameters are drawn half of the time from the
real pipeline and candidate ids, so generated requests reach the code behind the 404s; the rest are fuzzed.

    python scripts/schemathesis_run.py                          # the CI budget: a few cases per operation
    python scripts/schemathesis_run.py --max-examples 100 --max-time 900 --json var/schemathesis.json

Nothing is excluded: the admin DELETE of a candidate erases from this run's own pool only. Exit status 1 when any
check failed (a 5xx, or with --conformance a response that does not match the documented schema).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("not_a_server_error",)
CONFORMANCE = ("response_schema_conformance", "content_type_conformance")
PIPELINES = {
    "p-hostile": {"title": "Software Engineer", "locations": ["Austin, TX", "Remote"], "skills": ["Python", "SQL"]},
    "p-nurse": {"title": "Registered Nurse", "locations": ["Boston, MA"], "skills": ["Epic"], "access_restricted": True,
                "owner_email": "ada@example.com"},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(prefix: str, workdir: Path, pool_size: int) -> dict[str, Any]:
    """Pool, tenant, admin seat and pipelines under PREFIX; returns what the run needs."""
    from elasticsearch import AsyncElasticsearch

    from recmatch.accounts import service as accounts
    from recmatch.core.config import Settings
    from recmatch.core.es import IndexNames, make_client, run_with_async_client
    from recmatch.core.models import PipelineIn
    from recmatch.indexing import reindex as indexing
    from recmatch.ops.cluster import prepare_cluster
    from recmatch.pipelines import service as pipelines
    from recmatch.text.taxonomy import get_taxonomy

    settings = Settings(index_prefix=prefix)
    names = IndexNames(prefix)
    prepare_cluster(settings)
    es = make_client(settings)
    try:
        # Writes that wait for a refresh (pipelines, accounts) answer in ~0.1 s instead of ~1 s.
        es.indices.put_settings(index=f"{names.index('pipelines')},{names.index('accounts')}",
                                settings={"index": {"refresh_interval": "100ms"}})
        source = workdir / "pool.jsonl"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_candidates.py"), "--source", "demo",
                        "--count", str(pool_size), "--seed", "3", "--out", str(source)], check=True,
                       capture_output=True)
        indexing.reindex(es=es, settings=settings, source=source, rejects_path=workdir / "pool.rejects.jsonl")
        candidate_ids = [json.loads(line)["candidate_id"] for line in source.read_text().splitlines()[:20]]
    finally:
        es.close()

    async def accounts_and_pipelines(es_async: AsyncElasticsearch, names: IndexNames) -> tuple[str, str]:
        tenant = await accounts.create_tenant(es=es_async, names=names, name="Hostile Input Inc",
                                              crm_provider="demo-crm", crm_origins=["https://crm.example.com"])
        seat, api_key = await accounts.create_seat(es=es_async, names=names, tenant_id=tenant.tenant_id,
                                                   email="ada@example.com", license=accounts.License.admin)
        principal = accounts.Principal(tenant=tenant, seat=seat)
        for crm_pipeline_id, fields in PIPELINES.items():
            await pipelines.put_pipeline(es=es_async, names=names, principal=principal,
                                         crm_pipeline_id=crm_pipeline_id, pipeline=PipelineIn(**fields),
                                         taxonomy=get_taxonomy())
        return tenant.tenant_id, api_key

    tenant_id, api_key = run_with_async_client(settings, accounts_and_pipelines)
    return {"settings": settings, "tenant_id": tenant_id, "api_key": api_key, "candidate_ids": candidate_ids}


def write_config(path: Path, candidate_ids: list[str]) -> Path:
    """schemathesis.toml: half of the path parameters are real ids, so requests reach past the 404s."""
    values = lambda items: "[" + ", ".join(json.dumps(item) for item in items) + "]"  # noqa: E731
    path.write_text(
        f"[dictionaries.pipelines]\nvalues = {values(list(PIPELINES))}\n\n"
        f"[dictionaries.candidates]\nvalues = {values(candidate_ids)}\n\n"
        "[parameters]\n"
        '"path.crm_pipeline_id" = { dictionary = "pipelines", probability = 0.5 }\n'
        '"path.candidate_id" = { dictionary = "candidates", probability = 0.5 }\n'
    )
    return path


def serve(settings: Any, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECMATCH_")}
    env.update(RECMATCH_ES_URL=settings.es_url, RECMATCH_INDEX_PREFIX=settings.index_prefix)
    log = (workdir / "api.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "recmatch", "serve", "--host", "127.0.0.1", "--port",
                                str(port)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"recmatch serve exited ({process.returncode}); see {workdir / 'api.log'}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("recmatch serve did not answer /healthz within 60 s")


def run_schemathesis(*, url: str, api_key: str, config: Path, workdir: Path, max_examples: int, max_time: int,
                     seed: int, conformance: bool, workers: int) -> dict[str, Any]:
    """`schemathesis run`; returns its JSON report with our summary under "recmatch"."""
    report = workdir / "schemathesis.json"
    checks = CHECKS + (CONFORMANCE if conformance else ())
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run",
               f"{url}/openapi.json", "--header", f"Authorization: Bearer {api_key}", "--checks", ",".join(checks),
               "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(max_examples),
               "--max-time", str(max_time), "--seed", str(seed), "--workers", str(workers),
               "--generation-database", "none", "--request-timeout", "30", "--continue-on-failure",
               "--report", "json,ndjson", "--report-json-path", str(report),
               "--report-ndjson-path", str(workdir / "schemathesis.ndjson"), "--output-sanitize", "true",
               "--suppress-health-check", "all"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=max_time + 300)
    seconds = time.monotonic() - started
    (workdir / "schemathesis.out").write_text(done.stdout + done.stderr)
    if not report.is_file():
        raise SystemExit(f"schemathesis wrote no report (exit {done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    data = json.loads(report.read_text())
    data["recmatch"] = summarize(data, events=workdir / "schemathesis.ndjson", seconds=seconds,
                                 exit_code=done.returncode, output=done.stdout)
    return data


def summarize(report: dict[str, Any], *, events: Path, seconds: float, exit_code: int, output: str) -> dict[str, Any]:
    """Cases generated, requests by status, failures by check with a sample each (the figures the docs quote)."""
    statuses: Counter[str] = Counter()
    by_operation: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    samples: dict[str, str] = {}
    mismatches: Counter[tuple[str, str, int, bool]] = Counter()
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished or "recorder" not in finished:
            continue
        recorder = finished["recorder"]
        for case_id, interaction in (recorder.get("interactions") or {}).items():
            response = interaction.get("response") or {}
            status = response.get("status_code")
            statuses[str(status)] += 1
            by_operation[recorder["label"]] += 1
            for check in (recorder.get("checks") or {}).get(case_id, []):
                if check.get("status") == "failure":
                    failed[check["name"]] += 1
                    samples.setdefault(check["name"], f"{recorder['label']} → {status}: "
                                                      f"{_body_text(response)[:300]}")
                    if check["name"] in CONFORMANCE:
                        mismatches[(check["name"], recorder["label"], int(status or 0),
                                    _is_problem(_body_text(response)))] += 1
    return {
        "seconds": round(seconds, 1), "exit_code": exit_code, "stop_reason": report.get("stop_reason"),
        "cases_generated": (report.get("test_cases") or {}).get("generated"),
        "requests": sum(statuses.values()),
        "operations": (report.get("operations") or {}).get("tested"),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(count for status, count in statuses.items() if status.startswith("5")),
        "failed_checks": dict(failed), "failure_samples": samples,
        "conformance_failures": [
            {"check": check, "operation": label, "status": status, "problem_shape": shape, "count": count}
            for (check, label, status, shape), count in sorted(mismatches.items())
        ],
        "requests_by_operation": dict(sorted(by_operation.items())),
        "tail": output.strip().splitlines()[-25:],
    }


def _is_problem(text: str) -> bool:
    """The API's one error shape: {"type": "<ErrorName>", "detail": "<sentence>"}."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"type", "detail"} and all(isinstance(v, str) for v in body.values())


def _body_text(response: dict[str, Any]) -> str:
    content = response.get("content") or {}
    if isinstance(content, dict) and "$base64" in content:
        return base64.b64decode(content["$base64"]).decode("utf-8", "replace")
    return str(content)


def cleanup(settings: Any) -> None:
    from recmatch.core.es import make_client

    es = make_client(settings)
    try:
        es.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*", expand_wildcards="all")
    finally:
        es.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=6, help="cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=120, help="seconds for the whole schemathesis run")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=300, help="candidates in the run's own pool")
    parser.add_argument("--conformance", action=argparse.BooleanOptionalAction, default=True,
                        help="also check responses against the documented schema and content type")
    parser.add_argument("--index-prefix", default=None, help="[default: recmatch-st-<random>]")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the report, config and API log in this folder")
    args = parser.parse_args(argv)

    prefix = args.index_prefix or f"recmatch-st-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="schemathesis-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        prepared = prepare(prefix, workdir, args.pool)
        process = None
        try:
            process, url = serve(prepared["settings"], workdir)
            report = run_schemathesis(
                url=url, api_key=prepared["api_key"], config=write_config(workdir / "schemathesis.toml",
                                                                          prepared["candidate_ids"]),
                workdir=workdir, max_examples=args.max_examples, max_time=args.max_time, seed=args.seed,
                conformance=args.conformance, workers=args.workers)
        finally:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            cleanup(prepared["settings"])
    summary = report["recmatch"]
    print(json.dumps({key: value for key, value in summary.items() if key not in ("tail", "requests_by_operation")},
                     indent=2))
    print("\n".join(summary["tail"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["exit_code"] == 0 and summary["server_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
