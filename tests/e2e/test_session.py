"""A recruiter's whole session in a real Chromium: renewal without a lost click, details, filters, several candidates
at once, undo, "already in your CRM", and the demo on localhost and on a second port (issue 14)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from recmatch.accounts import service as accounts
from tests.e2e.conftest import ROOT, Server, _free_port
from tests.e2e.test_widget import card_ids, cards, logged, open_sandbox, open_widget
from tests.integration.support import run_async

try:
    from playwright.sync_api import expect
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("Playwright for Python is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e


def test_an_action_on_an_expired_token_waits_for_the_crm_and_is_not_lost(page: Any, server: Server, artifacts: Path):
    open_sandbox(page, server, "e2e-renew")
    page.locator("#auto-renew").uncheck()  # play a CRM that answers late, so the action meets an expired token
    lifetime = 20
    page.evaluate("url => { document.getElementById('widget').src = url; }",
                  server.widget_url("e2e-renew", ttl=timedelta(seconds=lifetime)))
    started = time.monotonic()
    widget = page.frame_locator("#widget")
    expect(cards(widget)).to_have_count(25, timeout=60_000)
    expect(logged(page, "recmatch:token-expiring")).to_have_count(1)  # under a minute left: it asks at once
    first = cards(widget).first
    page.wait_for_timeout(max(0.0, lifetime + 1 - (time.monotonic() - started)) * 1000)

    first.locator('[data-action="save"]').click()
    expect(widget.locator("#renewing")).to_be_visible()
    expect(logged(page, "recmatch:token-expiring")).to_have_count(2)
    expect(first.locator(".rm-badge--status")).to_have_count(0)
    expect(widget.locator("#expired")).to_be_hidden()  # the list stays; nothing says "expired"
    # A token posted by anyone but the parent window is ignored (here: the frame posting to itself).
    page.frame_locator("#widget").locator("body").evaluate(
        "(body) => window.postMessage({type: 'recmatch:token', token: 'x.y.z'}, '*')")
    page.wait_for_timeout(300)
    expect(widget.locator("#renewing")).to_be_visible()
    page.screenshot(path=artifacts / "renewal-waiting-1280.png")

    page.locator("#send-token").click()  # the CRM's answer
    expect(first.locator(".rm-badge--status")).to_have_text("Saved", timeout=20_000)
    expect(widget.locator("#renewing")).to_be_hidden()
    expect(logged(page, "recmatch:token-accepted")).to_have_count(1)
    expect(logged(page, "recmatch:saved")).to_have_count(1)  # once: the replay used the same idempotency key
    # The renewed token keeps working for the next click.
    cards(widget).nth(1).locator('[data-action="save"]').click()
    expect(cards(widget).nth(1).locator(".rm-badge--status")).to_have_text("Saved")


def test_detail_panel_shows_what_a_recruiter_checks(page: Any, server: Server):
    widget = open_widget(page, server, "e2e-detail")
    first = cards(widget).first
    first.locator(".rm-detail-toggle").click()
    panel = first.locator(".rm-detail")
    expect(panel).to_be_visible()
    for fact in ("open-to-work", "experience", "seniority", "past-titles", "skills"):
        expect(panel.locator(f'[data-fact="{fact}"]')).to_have_count(1)
    expect(panel.locator('[data-fact="experience"] dd')).to_have_text(re.compile(r"^(\d+(\.\d+)? years?|Not given)$"))
    expect(panel.locator('[data-fact="skills"] li').first).to_be_visible()
    matched = first.locator(".rm-skills li").all_inner_texts()
    highlighted = panel.locator('[data-fact="skills"] li.rm-chip--match').all_inner_texts()
    assert len(highlighted) == len(matched)
    # Reasons read as a recruiter says them, with a visible strength of match.
    expect(first.locator(".rm-strength")).to_have_attribute("aria-label", re.compile(r"^(Strong|Good|Partial) match$"))
    first.locator(".rm-why-toggle").first.click()
    reasons = " ".join(first.locator(".rm-reasons li").all_inner_texts())
    assert " is a " not in reasons and "~" not in reasons, reasons
    first.locator(".rm-detail-toggle").click()
    expect(panel).to_have_count(0)


def test_filters_narrow_the_whole_list_and_say_so(page: Any, server: Server, artifacts: Path):
    widget = open_widget(page, server, "e2e-filters")
    widget.locator("#filter-skill").select_option("Kubernetes")
    expect(widget.locator("#list-summary")).to_have_text(re.compile(r"^\d+ of 125 match your filters$"))
    shown = cards(widget).count()
    assert 0 < shown <= 125
    assert int(widget.locator("#list-summary").inner_text().split()[0]) == shown
    for index in range(min(shown, 10)):
        expect(cards(widget).nth(index).locator(".rm-skills")).to_contain_text("Kubernetes")
    expect(widget.locator("#pager")).to_be_hidden()
    widget.locator("#filter-open").check()
    expect(widget.locator("#list-summary")).to_have_text(re.compile(r"^\d+ of 125 match your filters$"))
    for index in range(min(cards(widget).count(), 5)):
        card = cards(widget).nth(index)
        card.locator(".rm-detail-toggle").click()
        expect(card.locator('[data-fact="open-to-work"] dd')).to_have_text("Yes, looking now")
    widget.locator("#filter-new").check()  # the first day of this pipeline: nobody is new since yesterday
    expect(widget.locator('[data-state="filtered-out"]')).to_be_visible()
    page.screenshot(path=artifacts / "filters-1280.png")
    widget.locator('[data-state="filtered-out"] button').click()
    expect(cards(widget)).to_have_count(25)
    expect(widget.locator("#list-summary")).to_have_text("1–25 of 125")


def test_several_candidates_saved_at_once_each_once(page: Any, server: Server):
    widget = open_sandbox(page, server, "e2e-multi")
    for index in range(3):
        cards(widget).nth(index).locator(".rm-select-box").check()
    expect(widget.locator("#selection-count")).to_have_text("3 selected")
    widget.locator("#selection-save").click()
    expect(widget.locator('#notices [data-selection="save"]')).to_have_text("Saved 3 of 3.")
    for index in range(3):
        expect(cards(widget).nth(index).locator(".rm-badge--status")).to_have_text("Saved")
    expect(widget.locator("#selection")).to_be_hidden()
    expect(logged(page, "recmatch:saved")).to_have_count(3)
    # Dismissing a selection asks for one reason, then dismisses each.
    for index in (3, 4):
        cards(widget).nth(index).locator(".rm-select-box").check()
    widget.locator("#selection-dismiss").click()
    widget.locator('#dismisser input[value="skills"]').check()
    widget.locator("#dismiss-send").click()
    expect(widget.locator('#notices [data-selection="dismiss"]')).to_have_text("Dismissed 2 of 2.")
    expect(logged(page, "recmatch:dismissed")).to_have_count(2)


def test_a_dismissal_can_be_undone_in_the_session(page: Any, server: Server):
    widget = open_sandbox(page, server, "e2e-undo")
    card = cards(widget).nth(1)
    card.locator('[data-action="dismiss"]').click()
    widget.locator('#dismisser input[value="title"]').check()
    widget.locator("#dismiss-send").click()
    expect(card.locator(".rm-badge--status")).to_have_text("Dismissed")
    expect(card.locator('[data-action="save"]')).to_have_count(0)  # a dismissed card's buttons are not live
    card.locator('[data-action="undo"]').click()
    expect(card.locator(".rm-badge--status")).to_have_count(0)
    expect(card.locator('[data-action="dismiss"]')).to_be_focused()
    expect(logged(page, "recmatch:undismissed")).to_have_count(1)
    widget.locator("#refresh").click()
    expect(cards(widget)).to_have_count(25)
    assert card_ids(widget).count(card_ids(widget)[1]) == 1


def test_candidates_already_in_the_crm_leave_the_list_on_refresh(page: Any, server: Server):
    widget = open_sandbox(page, server, "e2e-crm")
    held = card_ids(widget)[:2]

    async def seat(es, names):
        return await accounts.create_seat(es=es, names=names, tenant_id=server.tenant.tenant_id,
                                          email="crm-sync@example.com", license=accounts.License.recruiter)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds an event loop in this thread
        _, api_key = thread.submit(run_async, server.settings, seat).result()
    synced = httpx.post(server.url("/v1/crm-candidates:batch"), headers={"Authorization": f"Bearer {api_key}"},
                        json={"candidates": [{"member_id": cid} for cid in held]}, timeout=30)
    assert synced.status_code == 200 and synced.json()["accepted"] == 2, synced.text
    widget.locator("#refresh").click()
    expect(cards(widget)).to_have_count(25)
    expect(widget.locator("#list-summary")).to_have_text("1–25 of 125")
    assert not set(held) & set(card_ids(widget))


def test_host_page_keeps_its_scroll_and_wide_frames_show_more(new_page: Any, server: Server, artifacts: Path):
    for width in (360, 1280):
        page = new_page(width=width, height=900)
        widget = open_sandbox(page, server, f"e2e-manners-{width}")
        page.screenshot(path=artifacts / f"sandbox-{width}.png")
        if width == 1280:
            page.screenshot(path=artifacts / "sandbox.png")  # docs/sandbox.png is a copy of this one
            frame = page.frame(url=re.compile(r"/widget/"))
            rows = frame.eval_on_selector_all(
                "#list > li.rm-card .rm-actions",
                "nodes => nodes.map(n => [...n.children].map(c => Math.round(c.getBoundingClientRect().top)))")
            assert all(len(set(row)) == 1 for row in rows[:6]), rows[:6]  # Dismiss on the same row as Save
        next_page = widget.locator('#pager [data-page="next"]')
        next_page.scroll_into_view_if_needed()  # where the recruiter is when they page (Playwright would scroll there)
        before = page.evaluate("window.scrollY")
        next_page.click()
        expect(widget.locator("#list-summary")).to_have_text("26–50 of 125")
        assert page.evaluate("window.scrollY") == before  # paging never scrolls the CRM's page


def test_a_full_width_frame_at_1280_shows_a_screenful_of_cards(new_page: Any, server: Server, artifacts: Path):
    page = new_page(width=1280, height=900)
    open_widget(page, server, "e2e-wide")
    page.screenshot(path=artifacts / "widget-1280.png")
    tops = page.eval_on_selector_all("#list > li.rm-card", "nodes => nodes.map(n => n.getBoundingClientRect().top)")
    assert len(set(round(top) for top in tops[:3])) == 1, tops[:6]  # three cards a row
    assert sum(top < 900 for top in tops) >= 6, tops[:9]  # two rows above the fold at least
    narrow = new_page(width=360, height=800)
    open_widget(narrow, server, "e2e-narrow")
    narrow.screenshot(path=artifacts / "widget-360.png")


@pytest.fixture
def demo(server: Server, tmp_path: Path) -> Iterator[Any]:
    """Start `recmatch demo` on free ports (candidates already loaded in the e2e prefix); stopped after."""
    started: list[subprocess.Popen] = []

    def run(port: int) -> str:
        env = {**os.environ, "RECMATCH_ES_URL": server.settings.es_url,
               "RECMATCH_INDEX_PREFIX": server.settings.index_prefix}
        env.pop("RECMATCH_PUBLIC_BASE_URL", None)
        log = (tmp_path / f"demo-{port}.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "recmatch", "demo", "--source", str(tmp_path / "unused"),
                                    "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / f"demo-{port}.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return f"http://127.0.0.1:{port}"
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"recmatch demo on {port} was not ready: {(tmp_path / f'demo-{port}.log').read_text()[-3000:]}")

    yield run
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_demo_frames_its_widget_on_localhost_and_on_a_second_port(new_page: Any, demo: Any):
    first_port, second_port = _free_port(), _free_port()
    demo(first_port)
    page = new_page(width=1280, height=900)
    page.goto(f"http://localhost:{first_port}/sandbox")  # not the 127.0.0.1 the demo printed
    expect(cards(page.frame_locator("#widget"))).to_have_count(25, timeout=60_000)
    demo(second_port)  # a second run, on another port, reuses the demo tenant
    other = new_page(width=1280, height=900)
    other.goto(f"http://127.0.0.1:{second_port}/sandbox")
    expect(cards(other.frame_locator("#widget"))).to_have_count(25, timeout=60_000)
