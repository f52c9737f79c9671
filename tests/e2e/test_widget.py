"""The framed widget and the CRM sandbox in a real Chromium, against a real `recmatch serve` and Elasticsearch."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from elasticsearch import Elasticsearch

from recmatch.core.es import IndexNames
from tests.e2e.conftest import Server

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture says why; under CI a missing Playwright is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip("Playwright for Python is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

CARDS = "#list > li.rm-card[data-candidate-id]"


def cards(scope: Any) -> Any:
    return scope.locator(CARDS)


def card_ids(scope: Any) -> list[str]:
    return cards(scope).evaluate_all("nodes => nodes.map(node => node.dataset.candidateId)")


def open_sandbox(page: Any, server: Server, pipeline_id: str) -> Any:
    """The sandbox page, synced with its default pipeline under PIPELINE_ID, with the widget's first page shown."""
    page.goto(server.url(f"/sandbox?pipeline={pipeline_id}"))
    widget = page.frame_locator("#widget")
    expect(cards(widget)).to_have_count(25, timeout=60_000)
    return widget


def open_widget(page: Any, server: Server, pipeline_id: str, **pipeline: Any) -> Any:
    """The widget page on its own (as the top window), with a fresh token from the sandbox API."""
    synced = server.sync(pipeline_id, **pipeline)
    page.goto(server.url(synced["widget_url"]))
    expect(cards(page)).to_have_count(25, timeout=60_000)
    return page


def logged(page: Any, message_type: str) -> Any:
    return page.locator(f'#log li[data-type="{message_type}"]')


def test_sandbox_shows_the_widget_with_25_cards_and_pages_through_125_without_duplicates(
    page: Any, server: Server, artifacts: Path
):
    matches_requests: list[str] = []
    page.on("request", lambda request: matches_requests.append(request.url) if "/matches?" in request.url else None)
    widget = open_sandbox(page, server, "e2e-pager")
    expect(widget.locator("#pipeline-title")).to_have_text("Senior Backend Engineer")
    expect(widget.locator("#pipeline-skills li")).to_have_text(["Python", "PostgreSQL", "Kubernetes"])
    page.screenshot(path=artifacts / "sandbox-loaded-1200.png")

    seen = card_ids(widget)
    expect(widget.locator("#list-summary")).to_have_text("1–25 of 125")
    expect(widget.locator('#pager [aria-current="page"]')).to_have_text("1")
    expect(widget.locator('#pager [data-page="prev"]')).to_be_disabled()
    for number in range(2, 6):
        if number % 2:
            widget.locator(f'#pager [data-page="{number}"]').click()
        else:
            widget.locator('#pager [data-page="next"]').click()
        first, last = (number - 1) * 25 + 1, number * 25
        expect(widget.locator("#list-summary")).to_have_text(f"{first}–{last} of 125")
        expect(widget.locator('#pager [aria-current="page"]')).to_have_text(str(number))
        expect(cards(widget)).to_have_count(25)
        expect(cards(widget).first.locator(".rm-rank")).to_have_text(f"#{first}")
        seen += card_ids(widget)
    expect(widget.locator('#pager [data-page="next"]')).to_be_disabled()
    assert len(seen) == 125 and len(set(seen)) == 125

    # pages 2-5 name the snapshot of the first page, so the list never reshuffles while paging
    snapshots = {parse_qs(urlsplit(url).query).get("snapshot", [""])[0] for url in matches_requests
                 if parse_qs(urlsplit(url).query)["page"] != ["1"]}
    assert len(snapshots) == 1 and re.fullmatch(r"v\d+-\d{8}-l\d+", snapshots.pop())


def test_save_dismiss_and_export_change_cards_in_place_teach_the_learned_strip_and_tell_the_parent(
    page: Any, server: Server, artifacts: Path
):
    widget = open_sandbox(page, server, "e2e-actions")
    expect(widget.locator("#learned-empty")).to_be_visible()
    widget.locator('#pager [data-page="2"]').click()
    expect(widget.locator("#list-summary")).to_have_text("26–50 of 125")
    on_page = card_ids(widget)

    saved = cards(widget).nth(0)
    saved_name = saved.locator(".rm-name").inner_text()
    saved.locator('[data-action="save"]').click()
    expect(saved.locator(".rm-badge--status")).to_have_text("Saved")
    expect(saved.locator('[data-action="save"]')).to_have_attribute("aria-disabled", "true")
    expect(widget.locator("#live")).to_have_text(f"Saved {saved_name}.")

    dismissed = cards(widget).nth(1)
    dismissed.locator('[data-action="dismiss"]').click()
    dialog = widget.locator("#dismisser")
    expect(dialog).to_be_visible()
    dialog.locator('input[value="location"]').check()
    dialog.locator("#dismiss-send").click()
    expect(dialog).to_be_hidden()
    expect(dismissed.locator(".rm-badge--status")).to_have_text("Dismissed")
    expect(dismissed).to_have_class(re.compile(r"\brm-card--dismissed\b"))

    allowed = cards(widget).evaluate_all(
        "nodes => nodes.map(node => !node.querySelector('[data-action=export]').hasAttribute('aria-disabled'))")
    exportable = cards(widget).nth(allowed.index(True, 2))  # neither the saved nor the dismissed one
    exported_id = exportable.get_attribute("data-candidate-id")
    exportable.locator('[data-action="export"]').click()
    expect(exportable.locator(".rm-badge--status")).to_have_text("Exported")

    # the recruiter's place is kept: same page, same cards in the same order
    expect(widget.locator("#list-summary")).to_have_text("26–50 of 125")
    expect(widget.locator('#pager [aria-current="page"]')).to_have_text("2")
    assert card_ids(widget) == on_page

    learned = widget.locator("#learned-items li")
    expect(learned.filter(has_text="more like:").first).to_be_visible()  # what the save and the export taught
    beyond_radius = "less like: people outside the search radius (1 location dismissal)"  # what the dismissal taught
    expect(learned.filter(has_text=beyond_radius)).to_be_visible()
    expect(widget.locator("#refresh")).to_contain_text("ranking updated")

    for message_type, candidate_id, status in (("recmatch:saved", on_page[0], "saved"),
                                               ("recmatch:dismissed", on_page[1], "dismissed"),
                                               ("recmatch:exported", exported_id, "exported")):
        expect(logged(page, message_type)).to_have_count(1)
        body = json.loads(logged(page, message_type).locator(".sb-log-body").inner_text())
        assert body == {"pipelineId": "e2e-actions", "candidateId": candidate_id, "status": status}
    expect(logged(page, "recmatch:resized").first).to_be_visible()
    page.screenshot(path=artifacts / "sandbox-after-actions-1200.png")

    # "Refresh list" asks without the snapshot: a new list that learned, without the candidates acted on
    widget.locator("#refresh").click()
    expect(widget.locator("#list-summary")).to_have_text("1–25 of 125")
    expect(widget.locator("#refresh")).to_have_text(re.compile(r"^\s*Refresh list\s*$"))
    assert not {on_page[0], on_page[1], exported_id} & set(card_ids(widget))
    cards(widget).first.locator(".rm-why-toggle").click()
    page.locator("#widget").content_frame.locator("body").evaluate("() => window.scrollTo(0, 0)")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=artifacts / "sandbox-1200.png", full_page=True)  # the README's picture

    widget.locator("#learned-reset").click()
    expect(widget.locator("#confirm-reset")).to_be_visible()
    widget.locator("#reset-confirm").click()
    expect(widget.locator("#confirm-reset")).to_be_hidden()
    expect(widget.locator("#learned-empty")).to_be_visible()
    expect(cards(widget)).to_have_count(25)


def test_export_is_explained_when_the_candidate_does_not_allow_it(
    page: Any, server: Server, es: Elasticsearch
):
    widget = open_sandbox(page, server, "e2e-no-export")
    widget_frame = page.frame_locator("#widget")
    page.fill("#pipeline-title", "Data Scientist")
    page.fill("#pipeline-skills", "Python, SQL, Machine Learning")
    page.click("#save-pipeline")
    expect(widget_frame.locator("#pipeline-title")).to_have_text("Data Scientist")
    expect(cards(widget)).to_have_count(25)
    allowed = cards(widget).evaluate_all(
        "nodes => nodes.map(node => !node.querySelector('[data-action=export]').hasAttribute('aria-disabled'))")
    position = allowed.index(True)
    first = cards(widget).nth(position)
    candidate_id = first.get_attribute("data-candidate-id")
    candidates = IndexNames(server.settings.index_prefix).candidates
    es.update(index=candidates, id=candidate_id, doc={"allow_export": False}, refresh=True)
    try:
        # the card was drawn while export was allowed: the API says no, and the card explains it
        first.locator('[data-action="export"]').click()
        expect(first.locator(".rm-card-msg")).to_contain_text("has not allowed their profile to be exported")
        expect(first.locator('[data-action="export"]')).to_have_attribute("aria-disabled", "true")
        expect(first.locator(".rm-badge--status")).to_have_count(0)
        expect(logged(page, "recmatch:exported")).to_have_count(0)

        # drawn again, the button says so up front, and a click explains instead of calling the API
        page.click("#save-pipeline")
        expect(cards(widget).nth(position)).to_have_attribute("data-candidate-id", candidate_id)
        button = cards(widget).nth(position).locator('[data-action="export"]')
        expect(button).to_have_attribute("aria-disabled", "true")
        expect(button).to_have_attribute("title", re.compile("hasn’t allowed"))
        expect(button).to_have_accessible_description(re.compile("hasn’t allowed"))
        button.click(force=True)  # aria-disabled keeps it focusable and clickable: a click explains
        expect(cards(widget).nth(position).locator(".rm-card-msg")).to_contain_text("hasn’t allowed")
    finally:
        es.update(index=candidates, id=candidate_id, doc={"allow_export": True}, refresh=True)


def test_editing_the_pipeline_in_the_sandbox_updates_the_widget_header_and_list(page: Any, server: Server):
    widget = open_sandbox(page, server, "e2e-edit")
    before = card_ids(widget)
    page.fill("#pipeline-title", "Registered Nurse")
    page.fill("#pipeline-locations", "Phoenix, AZ")
    page.fill("#pipeline-skills", "Patient Care, Electronic Health Records")
    page.uncheck("#pipeline-remote")
    page.click("#save-pipeline")
    expect(page.locator("#sync-status")).to_contain_text("version 2")
    expect(widget.locator("#pipeline-title")).to_have_text("Registered Nurse")
    expect(widget.locator("#pipeline-locations li").first).to_contain_text("Phoenix, AZ")
    expect(widget.locator("#pipeline-skills li")).to_have_text(["Patient Care", "Electronic Health Records"])
    expect(cards(widget)).to_have_count(25)
    after = card_ids(widget)
    assert after != before and not set(after[:5]) & set(before)
    expect(cards(widget).first.locator(".rm-role")).to_contain_text(re.compile(r"Nurse|RN\b"))


def test_an_expired_token_shows_the_reopen_from_your_crm_state(page: Any, server: Server, artifacts: Path):
    server.sync("e2e-expired")
    response = page.goto(server.widget_url("e2e-expired", ttl=timedelta(seconds=-5)))
    assert response.status == 401
    expect(page.locator("#expired")).to_be_visible()
    expect(page.locator("#expired-title")).to_have_text("This view has expired")
    expect(page.locator("#expired")).to_contain_text("Reopen Recommended Matches from your CRM")
    expect(page.locator("#main")).to_be_hidden()
    expect(cards(page)).to_have_count(0)
    page.screenshot(path=artifacts / "expired-1200.png")


def test_an_invalid_token_shows_the_reopen_from_your_crm_state(page: Any, server: Server):
    page.goto(server.url("/widget/e2e-expired?token=garbage"))
    expect(page.locator("#expired")).to_be_visible()
    expect(page.locator("#expired")).to_contain_text("Reopen Recommended Matches from your CRM")
    expect(page.locator("#main")).to_be_hidden()


def test_a_token_that_expires_while_open_turns_into_the_reopen_state_on_the_next_call(page: Any, server: Server):
    server.sync("e2e-expiring")
    minted_at = time.monotonic()
    page.goto(server.widget_url("e2e-expiring", ttl=timedelta(seconds=3)))
    expect(cards(page)).to_have_count(25, timeout=60_000)
    page.wait_for_timeout(max(0.0, 4.5 - (time.monotonic() - minted_at)) * 1000)
    cards(page).first.locator('[data-action="save"]').click()
    expect(page.locator("#expired")).to_be_visible()
    expect(page.locator("#expired-title")).to_have_text("This view has expired")
    expect(page.locator("#expired-title")).to_be_focused()  # the recruiter acted: tell them where they are
    expect(cards(page)).to_have_count(0)


def test_a_pipeline_nobody_matches_shows_what_was_relaxed_and_the_unplaced_location(
    page: Any, server: Server, artifacts: Path
):
    # a title and a skill no candidate shares anything with: the only way a list is empty
    synced = server.sync("e2e-empty", title="Zzyzx Qwxvb", locations=["Atlantis Nowhere"],
                         skills=["Frobnication"], remote_ok=False)
    page.goto(server.url(synced["widget_url"]))
    state = page.locator("#state")
    expect(state).to_contain_text("No candidates match yet")
    expect(state).to_contain_text("asked for fewer of the skills")
    expect(state).to_contain_text("“Atlantis Nowhere”")
    expect(state.get_by_role("button", name="Refresh list")).to_be_visible()
    expect(page.locator("#pipeline-locations .rm-chip--warn")).to_contain_text("Atlantis Nowhere")
    expect(page.locator("#pipeline-unresolved")).to_contain_text("Check the spelling in your CRM")
    expect(page.locator("#pager")).to_be_hidden()
    expect(cards(page)).to_have_count(0)
    page.screenshot(path=artifacts / "empty-1200.png")


def test_a_relaxed_list_says_what_was_relaxed_and_marks_who_is_outside_the_radius(
    page: Any, server: Server, artifacts: Path
):
    synced = server.sync("e2e-relaxed", title="Registered Nurse", locations=["Austin, TX"], skills=[],
                         remote_ok=False, radius_km=80)
    page.goto(server.url(synced["widget_url"]))
    notice = page.locator("#relaxation")
    expect(notice).to_be_visible(timeout=60_000)
    expect(notice).to_contain_text("widened the search radius")
    expect(notice).to_contain_text("Candidates listed only because of this are marked")
    outside = page.locator('#list .rm-badge--relaxed[data-relaxed="outside_radius"]')
    expect(outside.first).to_have_text("outside your 80 km")
    marked = page.locator("#list > li.rm-card").filter(has=outside)
    # every marked card lives farther than 80 km (its distance is printed next to its location)
    for text in marked.locator(".rm-where").all_inner_texts():
        found = re.search(r"([\d,]+) km from", text)
        assert found and int(found.group(1).replace(",", "")) > 80, text
    page.screenshot(path=artifacts / "relaxed-1200.png")


def test_an_unavailable_search_shows_the_error_with_retry(page: Any, server: Server):
    synced = server.sync("e2e-error")
    page.route("**/v1/pipelines/e2e-error/matches?*", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "7"}, content_type="application/json",
        body=json.dumps({"type": "SearchUnavailable", "detail": "Elasticsearch is not reachable"})))
    page.goto(server.url(synced["widget_url"]))
    error = page.locator("#state [role=alert]")
    expect(error).to_contain_text("Couldn’t load candidates")
    expect(error).to_contain_text("Try again in 7 s")
    page.unroute("**/v1/pipelines/e2e-error/matches?*")
    error.get_by_role("button", name="Try again").click()
    expect(cards(page)).to_have_count(25)
    expect(page.locator("#state")).to_be_hidden()


class _Markup(HTMLParser):
    """Scripts, style blocks, and inline style or event-handler attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"<{tag} {name}=…>" for name, _ in attrs if name == "style" or name.startswith("on")]


def test_widget_page_sends_frame_ancestors_csp_and_has_no_inline_script(server: Server):
    synced = server.sync("e2e-csp")
    response = httpx.get(server.url(synced["widget_url"]))
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors {server.base_url}" in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    for page_url in (synced["widget_url"], "/sandbox"):
        markup = _Markup()
        markup.feed(httpx.get(server.url(page_url)).text)
        assert markup.scripts and all(script.get("src") for script in markup.scripts), markup.scripts
        assert not markup.inline, markup.inline
    for asset in ("dom.js", "widget.js", "widget.css", "sandbox.js", "sandbox.css"):
        assert httpx.get(server.url(f"/widget/static/{asset}")).status_code == 200, asset


def test_360px_wide_layout_has_no_horizontal_scroll(new_page: Any, server: Server, artifacts: Path):
    narrow = open_widget(new_page(360, 780), server, "e2e-narrow")
    first, second = cards(narrow).nth(0), cards(narrow).nth(1)
    first.locator(".rm-why-toggle").click()
    expect(first.locator(".rm-why-body")).to_be_visible()
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 360
    assert first.bounding_box()["x"] == second.bounding_box()["x"]  # one column: the cards stack
    narrow.screenshot(path=artifacts / "list-360.png")
    first.locator('[data-action="dismiss"]').click()
    dialog_box = narrow.locator("#dismisser").bounding_box()
    assert dialog_box["x"] >= 0 and dialog_box["x"] + dialog_box["width"] <= 360
    narrow.keyboard.press("Escape")

    # the sandbox's 360 px frame: the same widget, framed
    page = new_page(1200, 900)
    widget = open_sandbox(page, server, "e2e-narrow")
    page.locator('label:has(input[name="frame-width"][value="360"])').click()
    frame = page.locator("#widget").element_handle().content_frame()
    expect(cards(widget)).to_have_count(25)
    assert frame.evaluate("window.innerWidth") == 360
    assert frame.evaluate("document.documentElement.scrollWidth") <= 360


def test_keyboard_tab_reaches_the_first_save_button_and_enter_saves(page: Any, server: Server, artifacts: Path):
    widget = open_widget(page, server, "e2e-keyboard")
    first_save = '#list > li:first-child [data-action="save"]'
    for _ in range(40):
        page.keyboard.press("Tab")
        if widget.evaluate(f"document.activeElement.matches('{first_save}')"):
            break
    else:
        pytest.fail("Tab never reached the first card's Save button")
    page.keyboard.press("Enter")
    first = cards(widget).first
    expect(first.locator(".rm-badge--status")).to_have_text("Saved")
    expect(widget.locator(first_save)).to_be_focused()  # the card was redrawn in place; focus stayed

    page.keyboard.press("Shift+Tab")  # back to "Why?"
    toggle = first.locator(".rm-why-toggle")
    expect(toggle).to_be_focused()
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(first.locator(".rm-why-body")).to_be_visible()

    dismiss = first.locator('[data-action="dismiss"]')
    dismiss.focus()
    page.keyboard.press("Enter")
    expect(widget.locator("#dismisser")).to_be_visible()
    page.keyboard.press("Escape")
    expect(widget.locator("#dismisser")).to_be_hidden()
    expect(dismiss).to_be_focused()
    page.screenshot(path=artifacts / "list-1200.png")


def test_inmail_composer_is_prefilled_sends_and_shows_the_limit_when_reached(
    page: Any, server: Server, artifacts: Path
):
    widget = open_sandbox(page, server, "e2e-inmail")
    first = cards(widget).first
    first_name = first.locator(".rm-name").inner_text().split()[0]
    first.locator('[data-action="inmail"]').click()
    composer = widget.locator("#composer")
    expect(composer).to_be_visible()
    expect(widget.locator("#composer-subject")).to_have_value(re.compile("Senior Backend Engineer"))
    expect(widget.locator("#composer-body")).to_have_value(re.compile(f"^Hi {re.escape(first_name)},"))
    expect(widget.locator("#composer-body")).to_have_value(re.compile("Senior Backend Engineer role"))
    expect(widget.locator("#composer-share")).to_contain_text("share their email and phone")
    page.screenshot(path=artifacts / "composer-1200.png")
    page.keyboard.press("Escape")
    expect(composer).to_be_hidden()
    expect(first.locator('[data-action="inmail"]')).to_be_focused()

    first.locator('[data-action="inmail"]').click()
    widget.locator("#composer-send").click()
    expect(composer).to_be_hidden()
    expect(first.locator(".rm-badge--status")).to_have_text("InMail sent")
    expect(logged(page, "recmatch:inmailed")).to_have_count(1)

    # the allowance (1 in these tests) is used up: the composer says so, and InMail is off everywhere
    cards(widget).nth(1).locator('[data-action="inmail"]').click()
    widget.locator("#composer-send").click()
    expect(widget.locator("#composer-error")).to_contain_text("InMail limit reached")
    expect(widget.locator("#composer-error")).to_contain_text("resets on")
    page.keyboard.press("Escape")
    expect(widget.locator('#notices [data-limit="inmail"]')).to_contain_text("resets on")
    expect(cards(widget).nth(2).locator('[data-action="inmail"]')).to_have_attribute("aria-disabled", "true")
    expect(logged(page, "recmatch:inmailed")).to_have_count(1)
