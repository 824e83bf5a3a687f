"""Logging in and out of the dashboard in a real browser; pages without a session send the
browser to the login page; /api calls carried by the session cookie need a same-origin Origin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.ui.e2e.browser import Console, expect, find, login, screenshot, wait_ready
from tests.ui.e2e.conftest import ADMIN, APPS, Dashboard

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

PAGES = ["/ui", "/ui/overview", "/ui/requests", "/ui/requests/demo-ok", "/ui/models",
         "/ui/guardrails", "/ui/costs", "/ui/keys"]


def _refused_login(console: Console, base: str) -> None:
    # A refused key is answered 401 (or 403 for a key whose role may not log in): the browser
    # logs that status of the login request on the console, which is right here.
    for status in (401, 403):
        console.allow(f"({base}/ui/login): Failed to load resource: the server responded with "
                      f"a status of {status}")


def _session_cookie(context: BrowserContext) -> dict[str, object] | None:
    return next((dict(c) for c in context.cookies() if c["name"] == "warden_session"), None)


def test_a_wrong_key_shows_the_login_error(page: Page, context: BrowserContext,
                                           console: Console, dashboard: Dashboard) -> None:
    page.goto(dashboard.url + "/ui/login")
    expect(find(page, "login-key")).to_be_visible()
    expect(find(page, "login-error")).to_have_count(0)
    screenshot(page, "login")
    _refused_login(console, dashboard.url)

    find(page, "login-key").fill("sk-not-a-key-of-this-gateway")
    find(page, "login-submit").click()

    expect(find(page, "login-error")).to_be_visible()
    assert "/ui/login" in page.url, f"a wrong key left the login page for {page.url}"
    assert _session_cookie(context) is None, "a wrong key got a session cookie"


def test_an_app_key_cannot_log_in(page: Page, context: BrowserContext, console: Console,
                                  dashboard: Dashboard) -> None:
    _refused_login(console, dashboard.url)
    page.goto(dashboard.url + "/ui/login")
    find(page, "login-key").fill(APPS["search-app"][0])
    find(page, "login-submit").click()

    expect(find(page, "login-error")).to_be_visible()
    assert _session_cookie(context) is None, "an app key got a dashboard session"


def test_the_admin_key_lands_on_the_overview(page: Page, context: BrowserContext,
                                             dashboard: Dashboard) -> None:
    login(page, dashboard.url, ADMIN)

    assert page.url.split("?")[0].rstrip("/") in (dashboard.url + "/ui",
                                                  dashboard.url + "/ui/overview"), page.url
    expect(find(page, "tile-rps")).to_be_visible()
    cookie = _session_cookie(context)
    assert cookie is not None, "no warden_session cookie after logging in"
    assert cookie["httpOnly"] is True, f"the session cookie is readable by scripts: {cookie}"
    assert cookie["sameSite"] == "Strict", f"the session cookie is not SameSite=Strict: {cookie}"
    assert ADMIN not in str(cookie["value"]), "the session cookie holds the key itself"


def test_logging_out_ends_the_session(page: Page, context: BrowserContext,
                                      dashboard: Dashboard) -> None:
    login(page, dashboard.url, ADMIN)
    find(page, "logout").click()
    page.wait_for_url("**/ui/login**")

    page.goto(dashboard.url + "/ui/requests")
    assert "/ui/login" in page.url, f"after logging out /ui/requests opened: {page.url}"


@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_a_session_redirects_to_the_login(
        path: str, page: Page, context: BrowserContext, dashboard: Dashboard) -> None:
    answer = context.request.get(dashboard.url + path, max_redirects=0)
    assert answer.status == 303, f"{path} without a session answered {answer.status}, not 303"
    location = answer.headers.get("location", "")
    assert "/ui/login?next=" in location, f"{path} redirected to {location!r}"

    page.goto(dashboard.url + path)
    assert "/ui/login" in page.url, f"{path} without a session showed {page.url}"
    expect(find(page, "login-key")).to_be_visible()


def test_logging_in_returns_to_the_page_asked_for(page: Page, dashboard: Dashboard) -> None:
    page.goto(dashboard.url + "/ui/costs")
    assert "/ui/login" in page.url, page.url
    find(page, "login-key").fill(ADMIN)
    with page.expect_navigation():
        find(page, "login-submit").click()
    wait_ready(page)
    assert page.url.startswith(dashboard.url + "/ui/costs"), \
        f"after logging in from /ui/costs the browser is on {page.url}"


def test_the_session_cookie_needs_a_same_origin_origin_to_change_anything(
        page: Page, context: BrowserContext, dashboard: Dashboard) -> None:
    login(page, dashboard.url, ADMIN)
    body = {"name": "nightly-export", "role": "app"}

    read = context.request.get(dashboard.url + "/api/requests?limit=1")
    assert read.status == 200, f"GET /api/requests with the session cookie: {read.status}"
    forged = context.request.post(dashboard.url + "/api/keys", data=body)
    assert forged.status == 403, f"a POST with the cookie and no Origin answered {forged.status}"
    other = context.request.post(dashboard.url + "/api/keys", data=body,
                                 headers={"origin": "http://evil.example"})
    assert other.status == 403, f"a POST from another origin answered {other.status}"

    # The same POST from the dashboard's own page: the browser adds its Origin.
    status = page.evaluate("""async body => (await fetch('/api/keys', {method: 'POST',
        headers: {'content-type': 'application/json'}, body: JSON.stringify(body)})).status""",
                           body)
    assert status == 201, f"a same-origin POST /api/keys from the page answered {status}"
    created = [k for k in dashboard.api("GET", "/api/keys")[1]["data"]
               if k["name"] == "nightly-export"]
    assert len(created) == 1, f"expected exactly the same-origin key, found {created}"
    dashboard.api("DELETE", f"/api/keys/{created[0]['id']}")
