"""A request's trace page, opened from the request table: its prompt with the redacted personal
data highlighted where the guard found it, the answer, the findings, and one entry per upstream
attempt (two for a request whose upstream failed and was retried)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.ui.e2e.browser import (
    Console,
    eventually,
    expect,
    find,
    goto,
    number,
    row_ids,
    screenshot,
    wait_ready,
)
from tests.ui.e2e.conftest import Dashboard
from tests.ui.e2e.traffic import DEMO_SESSION, PII_VALUES

if TYPE_CHECKING:
    from playwright.sync_api import Page

DEMO = ["demo-failed", "demo-blocked", "demo-redacted", "demo-streamed", "demo-ok"]


def own_id(dashboard: Dashboard, client_id: str) -> str:
    """The record id of the request the demo traffic sent with ``x-request-id: client_id``."""
    return str(dashboard.api("GET", f"/api/requests/{client_id}")[1]["record"]["request_id"])


def _open_from_table(page: Page, dashboard: Dashboard, client_id: str) -> None:
    goto(page, dashboard.url, f"/ui/requests?session={DEMO_SESSION}")
    demo = [own_id(dashboard, c) for c in DEMO]
    eventually(page, lambda: None if row_ids(page) == demo
               else f"the demo session shows {row_ids(page)}, not {demo} ({DEMO})")
    rid = own_id(dashboard, client_id)
    row = page.locator(f"[data-testid='request-row'][data-request-id='{rid}']")
    link = row.locator(f"a[href$='/ui/requests/{rid}']")
    with page.expect_navigation():
        (link.first if link.count() else row).click()
    assert page.url.endswith(f"/ui/requests/{rid}"), f"the row of {rid} opened {page.url}"
    wait_ready(page)


def test_a_redacted_request_shows_its_findings_in_the_prompt(admin_page: Page,
                                                             dashboard: Dashboard) -> None:
    page = admin_page
    _open_from_table(page, dashboard, "demo-redacted")

    expect(find(page, "trace")).to_be_visible()
    prompt = find(page, "trace-input")
    # The record keeps the prompt as the provider got it: placeholders, never the values.
    for value in PII_VALUES:
        expect(prompt).not_to_contain_text(value)
    marks = find(prompt, "finding-span")
    expect(marks).to_have_count(2)
    assert sorted(marks.all_inner_texts()) == ["[CREDIT_CARD]", "[EMAIL_ADDRESS]"], \
        f"highlighted {marks.all_inner_texts()}, not the card number's and the address's places"
    # The provider saw the redacted prompt, so the echoed answer holds the placeholders.
    expect(find(page, "trace-output")).to_contain_text("[CREDIT_CARD]")
    findings = find(page, "trace-findings")
    expect(findings).to_contain_text("CREDIT_CARD")
    expect(findings).to_contain_text("EMAIL_ADDRESS")
    expect(find(find(page, "trace-attempts"), "attempt")).to_have_count(1)
    record = dashboard.api("GET", "/api/requests/demo-redacted")[1]["record"]
    tokens = find(page, "trace-tokens").inner_text()
    assert str(record["input_tokens"]) in tokens, \
        f"trace-tokens {tokens!r} does not show the {record['input_tokens']} input tokens"
    expect(find(page, "trace-cost")).to_contain_text("$")
    expect(find(page, "trace-session")).to_contain_text(DEMO_SESSION)
    screenshot(page, "request-trace")


def test_a_retried_request_shows_every_attempt(admin_page: Page, dashboard: Dashboard) -> None:
    page = admin_page
    _open_from_table(page, dashboard, "demo-failed")

    record = dashboard.api("GET", "/api/requests/demo-failed")[1]["record"]
    assert len(record["attempts"]) == 2, record["attempts"]
    attempts = find(find(page, "trace-attempts"), "attempt")
    expect(attempts).to_have_count(2)
    for i in range(2):
        expect(attempts.nth(i)).to_contain_text("legacy-eu")
        expect(attempts.nth(i)).to_contain_text("503")


def test_a_streamed_request_shows_its_time_to_first_token(admin_page: Page,
                                                          dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/requests/demo-streamed")

    ttft = number(find(page, "trace-ttft").inner_text())
    assert ttft is not None and ttft > 0, \
        f"trace-ttft shows {find(page, 'trace-ttft').inner_text()!r}"
    expect(find(page, "trace-output")).to_contain_text("haiku")
    expect(find(find(page, "trace-attempts"), "attempt")).to_have_count(1)


def test_an_unknown_request_shows_a_page_error(admin_page: Page, console: Console,
                                               dashboard: Dashboard) -> None:
    page = admin_page
    # The browser logs the 404 of the page (or of its API call): expected here.
    console.allow("/requests/no-such-request): Failed to load resource: the server responded "
                  "with a status of 404")
    page.goto(dashboard.url + "/ui/requests/no-such-request")
    expect(find(page, "page-error")).to_be_visible()
    expect(find(page, "trace-input")).to_have_count(0)
