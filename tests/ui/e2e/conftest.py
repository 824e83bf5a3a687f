"""The dashboard under test, and the browser that looks at it.

The gateway: one real gateway on loopback for all the e2e tests, in front of two real fake
upstreams (one healthy, one answering 503), with a guard policy, keys of every role, budgets,
and a realistic mix of traffic already recorded in its SQLite store.

The browser: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright, one for all the
e2e tests; a fresh context (cookies, storage) per test, and every page's console errors and
warnings collected. Playwright's own browser downloads are never used. Without Chromium or
Playwright the tests are skipped with a hint on how to install them, or fail when
``WARDEN_TEST_REQUIRE_BROWSER=1`` (CI sets it), so that CI never passes by skipping them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import GatewayThread
from tests.ui.e2e import traffic
from tests.ui.e2e.browser import Console, api, login
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import Behaviour, FakeOpenAIUpstream

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path(os.environ.get("WARDEN_TEST_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("WARDEN_TEST_REQUIRE_BROWSER") == "1"
INSTALL_HINT = ("install them with `apt-get install -y chromium` and "
                "`.venv/bin/pip install -e '.[dev]'` (Playwright drives Debian's Chromium; "
                "`playwright install` is not needed)")


def _missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium ({CHROMIUM})")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright (the playwright package)")
    if not missing:
        return None
    return f"the dashboard's browser tests need {' and '.join(missing)}: {INSTALL_HINT}"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for these tests. Package-scoped: while the sync Playwright driver
    lives, the main thread has a running event loop, which pytest-asyncio tests run after these
    could not start theirs."""
    reason = _missing_browser()
    if reason is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"WARDEN_TEST_REQUIRE_BROWSER=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console() -> Console:
    """The console watch of the test's pages; the test fails when they logged an error or a
    warning (see ``Console.allow`` for the ones a test causes on purpose)."""
    return Console()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) with a 1280 x 800 viewport."""
    made = browser.new_context(viewport={"width": 1280, "height": 800})
    made.set_default_timeout(10_000)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext, console: Console) -> Iterator[Page]:
    """A page of the test's context, its console watched."""
    made = context.new_page()
    console.watch(made)
    yield made
    console.assert_clean()


# -- the gateway -------------------------------------------------------------------------------

ADMIN = "ui-admin-key-0001"
OPERATOR = "ui-operator-key-01"
VIEWER = "ui-viewer-key-0001"
APPS = {"search-app": ("sk-ui-search-0001", "search"),
        "support-bot": ("sk-ui-support-001", "support"),
        "batch-jobs": ("sk-ui-batch-00001", "research")}
SLOW_MODEL = "llama-batch"  # its first token comes after 4 s: requests stay in flight


def config(healthy: FakeOpenAIUpstream, failing: FakeOpenAIUpstream) -> dict[str, Any]:
    def upstream(dep: str, up: FakeOpenAIUpstream, model: str) -> dict[str, Any]:
        return {"id": dep, "provider": "openai", "base_url": up.base_url, "model": model}

    return {
        "admin_key": ADMIN,
        "server": {"region": "eu-west-1"},
        "keys": [
            {"key": OPERATOR, "name": "oncall", "role": "operator"},
            {"key": VIEWER, "name": "auditor", "role": "viewer"},
            *({"key": token, "name": name, "role": "app", "team": team}
              for name, (token, team) in APPS.items()),
        ],
        "guard": {"policies": {"support": {
            "input": [
                {"scanner": "pii", "action": "redact",
                 "options": {"entities": list(traffic.PII_KINDS)}},
                {"scanner": "injection", "action": "block"},
            ],
            "output": [{"scanner": "secrets", "action": "redact"}],
        }}},
        "budgets": [
            {"scope": "team", "match": "*", "usd": 5.0, "period": "month"},
            {"scope": "key", "match": "support-bot", "usd": 0.5, "period": "day"},
        ],
        "models": [
            {"name": "gpt-4o-mini", "guard": "support", "routing": {"retries": 0},
             "deployments": [upstream("openai-eu", healthy, "gpt-4o-mini")]},
            {"name": "claude-sonnet",
             "routing": {"strategy": "round-robin", "retries": 2, "backoff_s": 0.01},
             "deployments": [upstream("sonnet-flaky", failing, "claude-sonnet-4-5"),
                             upstream("sonnet-backup", healthy, "claude-sonnet-4-5")]},
            {"name": "llama-local",
             "deployments": [{"id": "vllm-a", "provider": "fake",
                              "params": {"ttft_ms": 30, "tokens_per_s": 400}}]},
            {"name": SLOW_MODEL,
             "deployments": [{"id": "vllm-batch", "provider": "fake",
                              "params": {"ttft_ms": 4000}}]},
            {"name": "legacy",
             "routing": {"retries": 1, "backoff_s": 0.01, "breaker": {"failures": 1000}},
             "deployments": [upstream("legacy-eu", failing, "gpt-3.5-turbo")]},
        ],
    }


@dataclass(frozen=True)
class Dashboard:
    """The running gateway the browser tests look at."""

    url: str
    gateway: GatewayThread
    sent: dict[str, int]  # request id -> HTTP status of the seeded traffic

    def api(self, method: str, path: str, token: str | None = ADMIN,
            body: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return api(self.url, method, path, token, body, headers)

    def records(self, query: str = "") -> list[dict[str, Any]]:
        """Up to 1,000 stored records matching ``query`` (the /api/requests filters), newest
        first, read with the admin key."""
        sep = "&" if query else ""
        status, body = self.api("GET", f"/api/requests?{query}{sep}limit=1000")
        assert status == 200, f"GET /api/requests?{query} answered {status}: {body}"
        return list(body["data"])

    def wait_recorded(self, count: int, timeout_s: float = 15) -> None:
        """Wait until the store holds at least ``count`` records."""
        deadline = time.monotonic() + timeout_s
        while (found := len(self.records())) < count:
            assert time.monotonic() < deadline, f"only {found} of {count} records were stored"
            time.sleep(0.05)


# Keys kept in the store (made through /api/keys), beside those of the config file.
STORED_KEYS = [{"name": "mobile-app", "role": "app", "team": "growth"},
               {"name": "finance-reports", "role": "viewer", "team": "finance"}]


def stored_keys(base: str) -> list[str]:
    """Create the STORED_KEYS; the tokens of those with the app role."""
    tokens = []
    for spec in STORED_KEYS:
        status, body = api(base, "POST", "/api/keys", ADMIN, spec)
        assert status == 201, f"POST /api/keys {spec} answered {status}: {body}"
        if spec["role"] == "app":
            tokens.append(str(body["token"]))
    return tokens


@pytest.fixture(scope="package")
def dashboard() -> Iterator[Dashboard]:
    healthy = FakeOpenAIUpstream(record=False)
    failing = FakeOpenAIUpstream(behaviour=Behaviour(fail_status=503), record=False)
    with ServerThread(healthy.http), ServerThread(failing.http), \
            GatewayThread(config(healthy, failing)) as gw:
        apps = [token for token, _ in APPS.values()]
        apps += stored_keys(gw.url)
        sent = traffic.send_all(gw.url, traffic.mixed(apps, 90))
        demo = traffic.send_all(gw.url, traffic.demo(APPS["support-bot"][0]), workers=1)
        expected = {"demo-ok": 200, "demo-streamed": 200, "demo-redacted": 200,
                    "demo-blocked": 400}
        for rid, status in expected.items():
            assert demo.status.get(rid) == status, \
                f"the seeded request {rid} answered {demo.status.get(rid)}, not {status}"
        assert demo.status.get("demo-failed", 200) >= 500, "the failing upstream did not fail"
        board = Dashboard(gw.url, gw, {**sent.status, **demo.status})
        board.wait_recorded(len(board.sent))
        yield board


@pytest.fixture
def admin_page(page: Page, dashboard: Dashboard) -> Page:
    """The test's page, logged in as the admin: on the overview."""
    login(page, dashboard.url, ADMIN)
    return page
