"""Every page of the dashboard, as the admin sees it after the seeded traffic: it renders its
data without a console error, shows what it is for, and is saved as docs/screenshots/<page>.png
(the README shows those files; they are made here, on every run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.ui.e2e.browser import expect, find, goto, number, row_ids, screenshot, tile_text
from tests.ui.e2e.conftest import Dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Page

TILES = ["tile-rps", "tile-p50", "tile-p95", "tile-p99", "tile-ttft", "tile-tps", "tile-errors",
         "tile-availability", "tile-cost", "tile-cache", "tile-guard", "tile-inflight"]
UNITS = {"tile-rps": "req/s", "tile-p50": "s", "tile-p95": "s", "tile-p99": "s",
         "tile-availability": "%", "tile-errors": "%", "tile-cost": "$"}
NAV = ["overview", "requests", "models", "guardrails", "costs", "keys"]


def test_the_overview_shows_every_tile_and_breakdown(admin_page: Page,
                                                     dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/overview")
    texts = {tile: tile_text(page, tile) for tile in TILES}
    for tile, text in texts.items():
        assert text, f"{tile} shows no value"
        if tile in UNITS:
            assert UNITS[tile] in text, f"{tile} shows {text!r}, without its unit {UNITS[tile]}"
    assert (number(texts["tile-rps"]) or 0) > 0, f"no traffic on the overview: {texts}"
    availability = number(texts["tile-availability"])
    assert availability is not None and 0 < availability < 100, \
        f"the failing upstream should lower the availability: {texts['tile-availability']}"
    assert (number(texts["tile-cost"]) or 0) > 0, f"no cost on the overview: {texts}"
    assert (number(texts["tile-guard"]) or 0) > 0, f"no guard action counted: {texts}"
    assert find(page, "range").input_value() == "1h", "the default range is not 1h"
    for by in ("model", "deployment", "key"):
        expect(find(page, f"breakdown-{by}")).to_be_visible()
    for model in ("gpt-4o-mini", "claude-sonnet", "legacy"):
        expect(find(page, "breakdown-model")).to_contain_text(model)
    screenshot(page, "overview")


def test_the_requests_page_lists_the_newest_requests(admin_page: Page,
                                                     dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/requests")
    newest = [r["request_id"] for r in dashboard.records()]
    shown = row_ids(page)
    assert shown and shown == newest[:len(shown)], f"rows {shown[:3]} vs records {newest[:3]}"
    for name in ("model", "deployment", "key", "user", "session", "status", "tag", "q", "range"):
        expect(find(page, f"filter-{name}")).to_be_visible()
    screenshot(page, "requests")


def test_the_models_page_shows_every_deployment(admin_page: Page, dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/models")
    status, body = dashboard.api("GET", "/api/deployments")
    assert status == 200, body
    rows = find(page, "deployment-row")
    expect(rows).to_have_count(len(body["data"]))
    for dep in ("openai-eu", "sonnet-flaky", "sonnet-backup", "vllm-a", "legacy-eu"):
        expect(page.locator("[data-testid='deployment-row']", has_text=dep)).to_have_count(1)
    expect(find(page, "config")).to_contain_text("gpt-4o-mini")
    expect(find(page, "config")).not_to_contain_text("ui-admin-key")
    screenshot(page, "models")


def test_the_guardrails_page_shows_what_was_blocked_and_redacted(admin_page: Page,
                                                                 dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/guardrails")
    expect(find(page, "guard-chart")).to_be_visible()
    expect(find(page, "top-blocked")).to_contain_text("injection")
    expect(find(page, "top-redacted")).to_contain_text("CREDIT_CARD")
    screenshot(page, "guardrails")


def test_the_costs_page_shows_spend_and_budgets(admin_page: Page, dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/costs")
    for by in ("key", "team", "model", "day"):
        expect(find(page, f"cost-by-{by}")).to_be_visible()
    expect(find(page, "cost-by-team")).to_contain_text("support")
    expect(find(page, "cost-by-model")).to_contain_text("gpt-4o-mini")
    expect(find(page, "budget-row").first).to_be_visible()
    screenshot(page, "costs")


@pytest.mark.parametrize("name", NAV)
def test_the_nav_opens_each_page(name: str, admin_page: Page, dashboard: Dashboard) -> None:
    page = admin_page
    with page.expect_navigation():
        find(page, f"nav-{name}").click()
    assert page.url.split("?")[0].endswith(f"/ui/{name}"), f"nav-{name} opened {page.url}"
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    expect(find(page, "page-error")).to_have_count(0)
