"""The overview follows the traffic live (server-sent events), without a reload: requests in
flight show up while they wait for their answer, the request rate rises after a burst, and a
wider range takes effect at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tests.ui.e2e.browser import find, number, tile_text, wait_until
from tests.ui.e2e.conftest import APPS, SLOW_MODEL, Dashboard
from tests.ui.e2e.traffic import Call, mixed, send, send_all

if TYPE_CHECKING:
    from playwright.sync_api import Page

# The number in a tile, read in the page (the same parsing as ``browser.number``).
TILE_NUMBER = """tile => {
    const el = document.querySelector(`[data-testid="${tile}"] [data-testid="value"]`);
    const m = el && el.textContent.replace(/,/g, '').match(/-?\\d+(\\.\\d+)?/);
    return m ? parseFloat(m[0]) : null;
}"""
SLOW = 6


def _tile_changes(page: Page, tile: str, before: str, what: str) -> None:
    wait_until(page, f"""before => document.querySelector(
                   '[data-testid="{tile}"] [data-testid="value"]').textContent.trim() !== before""",
               arg=before, timeout_ms=3_000, what=f"{tile} changes from {before!r} {what}")


def test_the_overview_follows_the_traffic_without_a_reload(admin_page: Page,
                                                           dashboard: Dashboard) -> None:
    page = admin_page
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    token = APPS["search-app"][0]
    assert number(tile_text(page, "tile-inflight")) == 0, \
        f"requests in flight before any was sent: {tile_text(page, 'tile-inflight')}"

    with ThreadPoolExecutor(SLOW) as pool:
        slow = [pool.submit(send, dashboard.url, Call(SLOW_MODEL, token, f"slow request {i}"))
                for i in range(SLOW)]
        # Each waits 4 s for its first token: the tile must show them well before.
        wait_until(page, f"() => ({TILE_NUMBER})('tile-inflight') >= 1", timeout_ms=3_000,
                   what="tile-inflight shows the requests waiting for their answer")
        statuses = [f.result()[1] for f in slow]
    assert statuses == [200] * SLOW, f"the slow requests answered {statuses}"
    wait_until(page, f"() => ({TILE_NUMBER})('tile-inflight') === 0", timeout_ms=3_000,
               what="tile-inflight back to 0 once the requests were answered")

    rate = tile_text(page, "tile-rps")
    apps = [token for token, _ in APPS.values()]
    answered = list(send_all(dashboard.url, mixed(apps, 150, seed=5)).status.values())
    assert answered.count(200) > 100, f"the burst was not answered: {sorted(answered)}"
    _tile_changes(page, "tile-rps", rate, "after 150 more requests")

    # Over 30 days instead of the last hour, the same requests are a far lower rate.
    hourly = number(tile_text(page, "tile-rps")) or 0.0
    find(page, "range").select_option("30d")
    _tile_changes(page, "tile-rps", tile_text(page, "tile-rps"), "when the range is 30 days")
    monthly = number(tile_text(page, "tile-rps"))
    assert monthly is not None and monthly < hourly / 100, \
        f"the 30-day rate {monthly} req/s is not far below the last hour's {hourly} req/s"
    assert page.evaluate("window.__sameDocument === true"), "the overview was reloaded"
