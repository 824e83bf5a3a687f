"""The request table: filters by model, status and text narrow the rows to the records the API
returns for the same filter, the URL carries the filters, a reload or a shared link keeps them,
and the pages go on with ``next-page``."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tests.ui.e2e.browser import (
    eventually,
    expect,
    filter_value,
    find,
    goto,
    row_ids,
    set_filter,
    wait_ready,
)
from tests.ui.e2e.conftest import Dashboard
from tests.ui.e2e.traffic import PII_VALUES

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _rows_match(page: Page, dashboard: Dashboard, query: str) -> None:
    """Wait until the table shows, in order, the newest records that /api/requests returns for
    ``query``; at least one."""
    def check() -> str | None:
        expected = [r["request_id"] for r in dashboard.records(query)]
        assert expected, f"the seeded traffic has no record for {query}"
        shown = row_ids(page)
        if not shown:
            return f"no rows for {query}"
        if shown != expected[:len(shown)]:
            return f"rows {shown[:5]}... are not the newest records for {query}: {expected[:5]}"
        if len(shown) < min(len(expected), 20):
            return f"only {len(shown)} of {len(expected)} records for {query} are shown"
        return None

    eventually(page, check)


def test_filtering_by_model_and_status(admin_page: Page, dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/requests")
    _rows_match(page, dashboard, "")

    set_filter(page, "model", "claude-sonnet")
    _rows_match(page, dashboard, "model=claude-sonnet")
    eventually(page, lambda: None if _query(page).get("model") == "claude-sonnet"
               else f"the URL does not carry the model filter: {page.url}")
    models = {r["model"] for r in dashboard.records("model=claude-sonnet")}
    assert models == {"claude-sonnet"}, models

    set_filter(page, "model", "legacy")
    set_filter(page, "status", "error")
    _rows_match(page, dashboard, "model=legacy&status=error")
    eventually(page, lambda: None if _query(page).get("status") == "error"
               and _query(page).get("model") == "legacy"
               else f"the URL does not carry both filters: {page.url}")
    shown = row_ids(page)
    for rid in shown[:5]:
        record = dashboard.api("GET", f"/api/requests/{rid}")[1]["record"]
        assert (record["model"], record["status"]) == ("legacy", "error"), \
            f"row {rid} is a {record['model']} request with status {record['status']}"

    page.reload()
    wait_ready(page)
    assert filter_value(page, "model") == "legacy", "a reload lost the model filter"
    assert filter_value(page, "status") == "error", "a reload lost the status filter"
    _rows_match(page, dashboard, "model=legacy&status=error")

    set_filter(page, "status", "blocked")
    set_filter(page, "model", "gpt-4o-mini")
    _rows_match(page, dashboard, "model=gpt-4o-mini&status=blocked")


def test_a_link_with_filters_opens_the_filtered_table(admin_page: Page,
                                                      dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/requests?model=gpt-4o-mini&status=ok")
    assert filter_value(page, "model") == "gpt-4o-mini"
    assert filter_value(page, "status") == "ok"
    _rows_match(page, dashboard, "model=gpt-4o-mini&status=ok")


def test_text_search_finds_the_prompt(admin_page: Page, dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/requests")
    words = "billed"  # a word of the prompt whose card number and address were redacted
    set_filter(page, "q", words)
    _rows_match(page, dashboard, f"q={words}")
    redacted = dashboard.api("GET", "/api/requests/demo-redacted")[1]["record"]["request_id"]
    assert redacted in row_ids(page), "the request with those words is not found"
    eventually(page, lambda: None if _query(page).get("q") == words
               else f"the URL does not carry the search: {page.url}")
    # The stored prompt holds the placeholder, not the address: nothing finds the address.
    set_filter(page, "q", PII_VALUES[1])
    expect(find(page, "empty")).to_be_visible()

    set_filter(page, "q", "no prompt says zyzzyva-quux")
    expect(find(page, "empty")).to_be_visible()
    assert row_ids(page) == [], "rows shown for a search that matches nothing"


def test_next_page_goes_on_where_the_first_ended(admin_page: Page,
                                                 dashboard: Dashboard) -> None:
    page = admin_page
    goto(page, dashboard.url, "/ui/requests")
    first = row_ids(page)
    everything = [r["request_id"] for r in dashboard.records()]
    assert len(first) < len(everything), \
        f"all {len(everything)} records fit on the first page; the test needs more traffic"
    find(page, "next-page").click()

    def check() -> str | None:
        shown = row_ids(page)
        everything = [r["request_id"] for r in dashboard.records()]
        start = everything.index(first[-1]) + 1
        if not shown or shown[0] == first[0]:
            return "the table still shows the first page"
        if shown != everything[start:start + len(shown)]:
            return f"the second page {shown[:3]}... does not follow the first one"
        return None

    eventually(page, check)
