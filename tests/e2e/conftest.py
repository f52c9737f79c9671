"""Browser-test fixtures: a real `recmatch serve` on a free port, a candidate pool, the sandbox tenant, and Debian's
Chromium driven by Playwright (which never downloads a browser of its own)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from recmatch.accounts import service as accounts
from recmatch.accounts.service import License, Seat
from recmatch.accounts.tokens import mint_widget_token
from recmatch.core.config import Settings
from tests.integration.support import load_demo_pool, run_async

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("RECMATCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
INMAIL_ALLOWANCE = 1  # small, so the limit-reached state is reachable; only the InMail test sends InMails


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives Debian's Chromium against a real `recmatch serve`")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests need this when CI is set: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium: present and runnable, else skip (fail under CI)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RECMATCH_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[test]')")
    return CHROMIUM


@pytest.fixture(scope="session")
def e2e_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-e2e"})


@pytest.fixture(scope="session")
def e2e_pool(e2e_settings: Settings, es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 demo candidates from the generator, loaded through a real reindex."""
    # the pool spans all 1,016 occupations: 6,000 give the sandbox's backend pipeline a full list of 125
    return load_demo_pool(e2e_settings, es, tmp_path_factory.mktemp("e2e-pool"), count=6000)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    base_url: str
    secret: str
    tenant: accounts.Tenant
    settings: Settings

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def sync(self, crm_pipeline_id: str, **pipeline: Any) -> dict[str, Any]:
        """What the sandbox page does on "Save pipeline": sync as the sandbox tenant, get a widget URL."""
        body = {"title": "Senior Backend Engineer", "locations": ["Austin, TX", "Remote"],
                "skills": ["Python", "PostgreSQL", "Kubernetes"], "remote_ok": True, "radius_km": 80, **pipeline}
        response = httpx.post(self.url(f"/sandbox/api/pipelines/{crm_pipeline_id}"), json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def widget_url(self, crm_pipeline_id: str, *, ttl: timedelta) -> str:
        """A widget URL with a token of the given lifetime (negative: already expired)."""
        seat = Seat(seat_id=f"sandbox-{self.tenant.tenant_id}", tenant_id=self.tenant.tenant_id,
                    email="sandbox@example.com", license=License.recruiter)
        token, _ = mint_widget_token(secret=self.secret, seat=seat, crm_pipeline_id=crm_pipeline_id, ttl=ttl)
        return self.url(f"/widget/{crm_pipeline_id}?token={token}")


@pytest.fixture(scope="package")
def server(e2e_settings: Settings, e2e_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m recmatch serve` as a subprocess, with the sandbox on for a tenant whose CRM is this origin."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API may already run an event loop in this thread
        tenant = thread.submit(run_async, e2e_settings, lambda es, names: accounts.create_tenant(
            es=es, names=names, name="E2E CRM", crm_provider="demo-crm", crm_origins=[base_url],
            tenant_id=f"e2e-{uuid.uuid4().hex[:8]}")).result()
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        "RECMATCH_ES_URL": e2e_settings.es_url,
        "RECMATCH_INDEX_PREFIX": e2e_settings.index_prefix,
        "RECMATCH_SANDBOX_ENABLED": "true",
        "RECMATCH_SANDBOX_TENANT": tenant.tenant_id,
        "RECMATCH_PUBLIC_BASE_URL": base_url,
        "RECMATCH_SECRET_KEY": secret,
        "RECMATCH_INMAIL_MONTHLY_ALLOWANCE": str(INMAIL_ALLOWANCE),
    }
    log_path = tmp_path_factory.mktemp("e2e-server") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "recmatch", "serve", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"recmatch serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"recmatch serve was not ready in 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(base_url=base_url, secret=secret, tenant=tenant, settings=e2e_settings)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="package")
def browser(chromium: Path) -> Iterator[Any]:
    """One Chromium for the e2e package; Playwright's sync API holds an event loop in this thread until it closes,
    so it must stop before tests outside this package call asyncio.run()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Any, server: Server) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh browser contexts of a given size; fails the test on a script error or a CSP violation."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_page(width: int = 1200, height: int = 900) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height}, reduced_motion="reduce")
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda message: problems.append(f"console: {message.text}")
                if "Content Security Policy" in message.text or "Refused to" in message.text else None)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    """A page at 1200 x 900."""
    return new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ (gitignored): screenshots of the key states."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
