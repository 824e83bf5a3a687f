"""The admin's keys page: a key created there shows its token once, and that token works; once
revoked there, its row says so and the token is refused."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.ui.e2e.browser import (
    Console,
    eventually,
    expect,
    find,
    goto,
    login,
    screenshot,
    wait_ready,
)
from tests.ui.e2e.conftest import Dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

TOKEN = re.compile(r"wk-([0-9a-f]{16})-\S+")


def _row(page: Page, key_id: str) -> Locator:
    return page.locator(f"[data-testid='key-row'][data-key-id='{key_id}']")


def _create(page: Page, name: str, role: str, team: str) -> tuple[str, str]:
    """Create a key through the form; (its id, its token)."""
    find(page, "key-create-name").fill(name)
    find(page, "key-create-role").select_option(role)
    find(page, "key-create-team").fill(team)
    find(page, "key-create-submit").click()
    shown = find(page, "new-key-token")
    expect(shown).to_be_visible()
    text = shown.inner_text().strip()
    found = TOKEN.search(text)
    assert found, f"new-key-token shows {text!r}, not a token"
    return f"key_{found.group(1)}", found.group()


def _revoke(page: Page, key_id: str) -> None:
    """Revoke a key through its row's button and the confirmation."""
    _row(page, key_id).locator("[data-testid='key-revoke']").click()
    confirm = find(page, "confirm")
    expect(confirm).to_be_visible()
    confirm.click()
    expect(_row(page, key_id)).to_contain_text(re.compile("revoked", re.IGNORECASE))
    expect(_row(page, key_id).locator("[data-testid='key-revoke']")).to_have_count(0)


def test_creating_a_key_shows_its_token_once_and_the_token_works(admin_page: Page,
                                                                  dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/keys")
    stored = dashboard.api("GET", "/api/keys")[1]["data"]
    expect(find(page, "key-row")).to_have_count(len(stored))

    key_id, token = _create(page, "checkout-service", "app", "payments")

    expect(_row(page, key_id)).to_contain_text("checkout-service")
    expect(_row(page, key_id)).to_contain_text("payments")
    status, models = dashboard.api("GET", "/v1/models", token=token)
    assert status == 200, f"the new key's token was refused on /v1/models: {status} {models}"
    listed = {k["id"]: k for k in dashboard.api("GET", "/api/keys")[1]["data"]}
    assert listed[key_id]["role"] == "app" and listed[key_id]["team"] == "payments", \
        listed[key_id]
    screenshot(page, "keys")

    page.reload()
    wait_ready(page)
    expect(_row(page, key_id)).to_be_visible()
    assert token not in page.content(), "the token is shown again after a reload"


def test_a_key_created_for_a_viewer_opens_the_api(admin_page: Page,
                                                  dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/keys")
    key_id, token = _create(page, "weekly-report", "viewer", "finance")

    status, _ = dashboard.api("GET", "/api/stats?bucket=3600", token=token)
    assert status == 200, f"the new viewer key could not read /api/stats: {status}"
    status, _ = dashboard.api("POST", "/api/keys", token=token, body={"name": "x"})
    assert status == 403, f"the new viewer key could create a key: {status}"
    dashboard.api("DELETE", f"/api/keys/{key_id}")


def test_revoking_a_key_marks_its_row_and_refuses_its_token(admin_page: Page,
                                                            dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/keys")
    key_id, token = _create(page, "temp-contractor", "app", "growth")
    assert dashboard.api("GET", "/v1/models", token=token)[0] == 200

    _revoke(page, key_id)

    eventually(page, lambda: None if dashboard.api("GET", "/v1/models", token=token)[0] == 401
               else "the revoked key's token is still accepted", timeout_s=3)
    listed = {k["id"]: k for k in dashboard.api("GET", "/api/keys")[1]["data"]}
    assert listed[key_id]["revoked_at"] is not None, listed[key_id]


def test_revoking_a_key_ends_its_dashboard_sessions(admin_page: Page, browser: Browser,
                                                    console: Console,
                                                    dashboard: Dashboard) -> None:
    status, made = dashboard.api("POST", "/api/keys", body={"name": "on-call", "role": "viewer"})
    assert status == 201, made
    elsewhere = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        reader = elsewhere.new_page()
        console.watch(reader)
        login(reader, dashboard.url, made["token"])
        goto(reader, dashboard.url, "/ui/requests")

        goto(admin_page, dashboard.url, "/ui/keys")
        _revoke(admin_page, made["id"])

        reader.goto(dashboard.url + "/ui/requests")
        assert "/ui/login" in reader.url, \
            f"the session of a revoked key still opens /ui/requests: {reader.url}"
    finally:
        elsewhere.close()
