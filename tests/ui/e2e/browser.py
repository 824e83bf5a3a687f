"""What the dashboard's browser tests share: the console watch, logging in, waiting for a page's
first data render, reading tiles, screenshots, and calls to the gateway's HTTP API.

Everything here finds elements by their ``data-testid`` (the contract between the dashboard
and its tests), never by layout or wording.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Locator, Page
    from playwright.sync_api._generated import LocatorAssertions

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
READY = "() => document.body !== null && document.body.dataset.ready === '1'"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


@dataclass
class Console:
    """What the pages of one test said on their consoles, and the errors they threw."""

    messages: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.messages.append(f"uncaught error: {exc}"))

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            where = msg.location.get("url") or "?"
            self.messages.append(f"console.{msg.type} ({where}): {msg.text}")

    def allow(self, fragment: str) -> None:
        """Accept console lines that contain ``fragment``: an error the test causes on purpose
        (the browser logs the 403 of a page that a viewer may not see)."""
        self.allowed.append(fragment)

    def problems(self) -> list[str]:
        return [m for m in self.messages if not any(a in m for a in self.allowed)]

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, ("the dashboard logged errors or warnings on its console:\n  "
                              + "\n  ".join(problems))


def find(page: Page | Locator, name: str) -> Locator:
    return page.locator(f"[data-testid={name!r}]")


def expect(target: Locator) -> LocatorAssertions:
    """Playwright's retrying assertions on ``target``, imported only once a browser runs (the
    tests are collected, and skipped with a hint, where Playwright is not installed)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def wait_until(page: Page, script: str, arg: object = None, timeout_ms: float = 5_000,
               what: str = "") -> None:
    """Wait until the JavaScript function ``script`` returns a truthy value in the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(script, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(f"after {timeout_ms / 1e3:g} s, still not true: {what or script}"
                             ) from None


def eventually(page: Page, check: Callable[[], str | None], timeout_s: float = 5.0) -> None:
    """Retry ``check`` (it returns None when satisfied, else what is still wrong) until it
    passes or ``timeout_s`` has gone by."""
    deadline = time.monotonic() + timeout_s
    while (problem := check()) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s:g} s: {problem}")
        page.wait_for_timeout(100)


def set_filter(page: Page, name: str, value: str) -> None:
    """Set the request table's filter ``filter-<name>``: a select's option, or a text box's
    text followed by Enter."""
    box = find(page, f"filter-{name}")
    if box.evaluate("e => e.tagName") == "SELECT":
        box.select_option(value)
    else:
        box.fill(value)
        box.press("Enter")


def filter_value(page: Page, name: str) -> str:
    return str(find(page, f"filter-{name}").input_value())


def wait_ready(page: Page, timeout_ms: float = 10_000) -> None:
    """Wait until the page has rendered its first data (``document.body.dataset.ready``)."""
    page.wait_for_function(READY, timeout=timeout_ms)


def goto(page: Page, base: str, path: str) -> None:
    """Open ``path`` and wait for its first data render."""
    response = page.goto(base + path)
    assert response is not None, f"no response for {path}"
    assert response.ok, f"{path} answered {response.status}"
    wait_ready(page)


def login(page: Page, base: str, key: str, path: str = "/ui/login") -> None:
    """Log in through the form and wait for the page it lands on to render."""
    page.goto(base + path)
    find(page, "login-key").fill(key)
    with page.expect_navigation():
        find(page, "login-submit").click()
    assert "/ui/login" not in page.url, f"still on the login page after logging in: {page.url}"
    wait_ready(page)


def number(text: str) -> float | None:
    """The first number in a tile's text ("1,234.5 req/s", "$0.0123", "99.5 %"), or None."""
    found = _NUMBER.search(text)
    return float(found.group().replace(",", "")) if found else None


def tile_text(page: Page, tile: str) -> str:
    return find(find(page, tile), "value").inner_text().strip()


def row_ids(page: Page) -> list[str]:
    """The request ids of the request table's rows, top to bottom."""
    ids = find(page, "request-row").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-request-id'))")
    return [str(i) for i in ids]


def screenshot(page: Page, name: str) -> Path:
    """Save the viewport (1280 x 800) as docs/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def api(base: str, method: str, path: str, token: str | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One call to the gateway's HTTP API: (status, JSON body or None)."""
    sent = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, method=method, headers=sent,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
            status = exc.code
    return status, json.loads(raw) if raw else None
