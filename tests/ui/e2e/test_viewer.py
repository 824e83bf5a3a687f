"""A viewer (and an operator) sees the dashboard's pages but not the keys: no nav-keys, a 403
"forbidden" page at /ui/keys, and the key API refuses its session cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.ui.e2e.browser import Console, expect, find, goto, login, screenshot
from tests.ui.e2e.conftest import OPERATOR, VIEWER, Dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Page

READABLE = ["/ui/overview", "/ui/requests", "/ui/requests/demo-redacted", "/ui/models",
            "/ui/guardrails", "/ui/costs"]
ROLES = {"viewer": VIEWER, "operator": OPERATOR}


@pytest.mark.parametrize("role", ROLES)
def test_a_reader_sees_the_pages_but_not_the_keys(role: str, page: Page, console: Console,
                                                  dashboard: Dashboard) -> None:
    login(page, dashboard.url, ROLES[role])
    for name in ("overview", "requests", "models", "guardrails", "costs"):
        expect(find(page, f"nav-{name}")).to_be_visible()
    expect(find(page, "nav-keys")).to_have_count(0)
    for path in READABLE:
        goto(page, dashboard.url, path)
        expect(find(page, "nav-keys")).to_have_count(0)
        expect(find(page, "page-error")).to_have_count(0)

    # The browser logs the 403 of the page asked for on purpose.
    console.allow(f"({dashboard.url}/ui/keys): Failed to load resource: the server responded "
                  "with a status of 403")
    response = page.goto(dashboard.url + "/ui/keys")
    assert response is not None and response.status == 403, \
        f"/ui/keys answered a {role} {response and response.status}, not 403"
    expect(find(page, "forbidden")).to_be_visible()
    expect(find(page, "key-create-submit")).to_have_count(0)
    expect(find(page, "key-row")).to_have_count(0)
    if role == "viewer":
        screenshot(page, "viewer-forbidden")


@pytest.mark.parametrize("role", ROLES)
def test_a_reader_cannot_create_a_key_with_its_cookie(role: str, page: Page, console: Console,
                                                      dashboard: Dashboard) -> None:
    login(page, dashboard.url, ROLES[role])
    console.allow(f"({dashboard.url}/api/keys): Failed to load resource: the server responded "
                  "with a status of 403")
    before = len(dashboard.api("GET", "/api/keys")[1]["data"])

    # A same-origin fetch from the dashboard's own page: the cookie and the Origin are right,
    # the role is not. The browser logs the 403s of these calls, which are the point here.
    statuses = page.evaluate("""async () => {
        const post = await fetch('/api/keys', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({name: 'sneaky', role: 'admin'})});
        const list = await fetch('/api/keys');
        return [post.status, list.status];
    }""")
    assert statuses == [403, 403], f"a {role}'s cookie on POST and GET /api/keys: {statuses}"
    assert len(dashboard.api("GET", "/api/keys")[1]["data"]) == before, "a key was created"
