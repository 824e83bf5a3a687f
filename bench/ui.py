"""The dashboard benchmark: how long the dashboard's pages take to render in headless Chromium
over 1,000,000 stored records.

    .venv/bin/python bench/ui.py [--records 1000000] [--runs 20] [--no-postgres] [--refill]

It uses the data sets of the query benchmark (``bench/query.py``: 1,000,000 records over 30
days, on SQLite and on PostgreSQL at WARDEN_BENCH_POSTGRES_URL; filled on first use, then kept
under bench/.data/). The dashboard's ranges end at the wall clock, so a data set that ended more
than ``--max-age-min`` minutes ago is first moved forward in time to end now (one UPDATE of the
times of its records and tags; the JSON file that describes it is updated with it, and
``query.py`` keeps working on it).

Then it starts the real gateway (``warden serve``) on that store, logs in through the login page
in Debian's Chromium (headless, driven by Playwright) with the admin key, and for each page loads
it once (the first load after the gateway started: reported apart, not in the percentiles), then
``--runs`` times more, each a new navigation in the same tab. A run's time is from the
navigation's start (``performance.timeOrigin``) to the moment the page sets
``document.body.dataset.ready = "1"`` (after its first data render), seen by a
MutationObserver that the benchmark installs before the page's own scripts run. Pages:

- ``/ui/overview?range=24h`` and ``/ui/overview?range=30d``: target p95 ≤ 1,000 ms;
- ``/ui/requests?model=claude-sonnet&status=error``: target p95 ≤ 300 ms.

Writes bench/results/ui.md and bench/results/ui.json. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from harness import (
    PYTHON,
    WORK,
    BenchError,
    Processes,
    machine,
    now_iso,
    package_versions,
    run_main,
    save_results,
    sigterm_as_exit,
)
from query import DATA, DAYS, dataset, gateway
from recorder import load_note, server_version, store_backends, table

from warden.store import SqlStore, open_store

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path(os.environ.get("WARDEN_BENCH_CHROMIUM", "/usr/bin/chromium"))
OVERVIEW_TARGET_MS = 1000.0
REQUESTS_TARGET_MS = 300.0
FILTER_MODEL = "claude-sonnet"
PAGES = [
    ("overview, last 24 h", "/ui/overview?range=24h", OVERVIEW_TARGET_MS),
    ("overview, last 30 days", "/ui/overview?range=30d", OVERVIEW_TARGET_MS),
    (f"requests, model={FILTER_MODEL} & status=error",
     f"/ui/requests?model={FILTER_MODEL}&status=error", REQUESTS_TARGET_MS),
]
# Records the moment the page marks itself ready, in ms since the navigation started; installed
# in every new document before its own scripts.
WATCH_READY = """(() => {
  const mark = () => {
    if (window.__benchReadyAt === undefined && document.body
        && document.body.dataset.ready === '1') {
      window.__benchReadyAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, {subtree: true, childList: true,
                                                attributes: true, attributeFilter: ['data-ready']});
})();"""
# The slowest call to /api that the page completed before it was ready, in ms; null when none
# did (the overview's first numbers come over its live stream, which never completes).
SLOWEST_API = """() => {
  const calls = performance.getEntriesByType('resource')
    .filter(e => new URL(e.name).pathname.startsWith('/api/')
                 && e.responseEnd > 0 && e.responseEnd <= window.__benchReadyAt)
    .map(e => e.responseEnd - e.startTime);
  return calls.length ? Math.max(...calls) : null;
}"""


# -- the data sets ------------------------------------------------------------------------------


def bring_forward(backend: str, meta: dict[str, Any], max_age_s: float) -> float:
    """Move the data set in time so that it ends now, when it ended more than ``max_age_s``
    ago; returns the seconds that took (0 when nothing moved)."""
    shift = float(int(time.time()) - meta["end"])
    if shift <= max_age_s:
        return 0.0
    print(f"{backend}: the data set ended {shift / 3600:.1f} h ago; moving it to end now ...",
          flush=True)
    t0 = time.perf_counter()
    store = open_store(meta["url"])
    assert isinstance(store, SqlStore)
    try:
        with store.engine.begin() as conn:
            params = {"d": shift}
            conn.execute(sa.text("UPDATE requests SET started_at = started_at + :d, "
                                 "ended_at = ended_at + :d"), params)
            conn.execute(sa.text("UPDATE request_tags SET started_at = started_at + :d"), params)
            conn.execute(sa.text("UPDATE feedback SET created_at = created_at + :d"), params)
        # Reclaim the old row versions and refresh the planner's statistics.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE requests, request_tags, feedback"
                                 if store.dialect == "postgresql" else "ANALYZE")
    finally:
        store.close()
    seconds = time.perf_counter() - t0
    meta["end"] += shift
    meta["moved_s"] = round(seconds, 1)
    meta_path = DATA / f"query-{backend}-{meta['records']}.json"
    saved = json.loads(meta_path.read_text())
    saved.update(end=meta["end"], moved=now_iso())
    meta_path.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"{backend}: moved forward by {shift / 3600:.1f} h in {seconds:.1f} s", flush=True)
    return seconds


# -- the browser --------------------------------------------------------------------------------


def check_browser() -> None:
    if not CHROMIUM.is_file():
        raise BenchError(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise BenchError("Playwright is missing: .venv/bin/pip install -e '.[dev]'") from None


def login(page: Page, base: str, admin_key: str) -> None:
    response = page.goto(base + "/ui/login")
    if response is None or not response.ok:
        raise BenchError(f"{base}/ui/login answered {response and response.status}: "
                         "does this gateway serve the dashboard?")
    page.locator("[data-testid='login-key']").fill(admin_key)
    with page.expect_navigation():
        page.locator("[data-testid='login-submit']").click()
    if "/ui/login" in page.url:
        raise BenchError(f"logging in with the admin key failed: still on {page.url}")


def load(page: Page, url: str, timeout_ms: float) -> dict[str, float | None]:
    """One navigation to ``url``: ms to ready, to the end of the HTML, and of the slowest API
    call completed before ready (None: none was)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    response = page.goto(url, wait_until="commit")
    if response is None or response.status != 200:
        raise BenchError(f"{url} answered {response and response.status}")
    try:
        page.wait_for_function("() => window.__benchReadyAt !== undefined", timeout=timeout_ms,
                               polling=50)
    except PlaywrightTimeout:
        raise BenchError(f"{url} was not ready (document.body.dataset.ready) within "
                         f"{timeout_ms / 1e3:.0f} s") from None
    ready = float(page.evaluate("window.__benchReadyAt"))
    html = float(page.evaluate(
        "performance.getEntriesByType('navigation')[0].responseEnd"))
    api = page.evaluate(SLOWEST_API)
    return {"ready_ms": ready, "html_ms": html, "api_ms": None if api is None else float(api)}


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(p * (len(sorted_values) - 1)))]


def measure(page: Page, base: str, name: str, path: str, target: float,
            runs: int) -> dict[str, Any]:
    first = load(page, base + path, 60_000)
    samples = [load(page, base + path, 30_000) for _ in range(runs)]

    def median(key: str) -> float | None:
        values = [v for s in samples if (v := s[key]) is not None]
        return round(statistics.median(values), 1) if values else None

    ready = sorted(float(s["ready_ms"] or 0) for s in samples)
    p95 = percentile(ready, 0.95)
    return {
        "page": name, "path": path, "target_ms": target,
        "first_ms": round(float(first["ready_ms"] or 0), 1),
        "p50_ms": round(statistics.median(ready), 1), "p95_ms": round(p95, 1),
        "max_ms": round(ready[-1], 1), "ok": p95 <= target,
        "html_p50_ms": median("html_ms"), "api_p50_ms": median("api_ms"),
        "ready_ms": [round(v, 1) for v in ready],
    }


def measure_backend(backend: str, meta: dict[str, Any], admin_key: str,
                    runs: int) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    results: list[dict[str, Any]] = []
    with Processes(WORK) as procs, gateway(procs, backend, meta["url"], admin_key) as port, \
            sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(WATCH_READY)
            page = context.new_page()
            base = f"http://127.0.0.1:{port}"
            login(page, base, admin_key)
            for name, path, target in PAGES:
                m = measure(page, base, name, path, target, runs)
                print(f"  {backend:10} {name:45} first {m['first_ms']:8.1f}  p50 "
                      f"{m['p50_ms']:8.1f}  p95 {m['p95_ms']:8.1f} ms"
                      f"{'' if m['ok'] else '   MISSES THE TARGET'}", flush=True)
                results.append(m)
        finally:
            browser.close()
    return results


# -- report -------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Dashboard over {result['records']:,} records",
        "",
        f"{result['date']} · {result['machine']['cpu_model']} · {result['machine']['cpus']} cores · "
        f"Chromium {result['chromium']} (headless) · SQLite {result['sqlite']} · "
        f"{result['postgres_server'] or 'PostgreSQL: not measured'}",
        "",
        f"{result['records']:,} records over {DAYS} days ending now (the query benchmark's data "
        "set). The real gateway (`warden serve`) and Chromium on the same machine; logged in as "
        "the admin. **ready**: from the navigation's start to the page's first data render "
        "(`document.body.dataset.ready`), the first load after the gateway started apart, "
        f"then {result['runs']} more loads for p50 / p95 / max.",
        "",
    ]
    for backend in result["backends"]:
        lines += [f"## {backend['backend']}", ""]
        rows = [(f"{m['page']} (`{m['path']}`)", f"{m['first_ms']:,.0f}", f"{m['p50_ms']:,.0f}",
                 f"**{m['p95_ms']:,.0f}** {'✅' if m['ok'] else '❌'}", f"{m['max_ms']:,.0f}",
                 f"{m['html_p50_ms']:,.0f}", _ms(m["api_p50_ms"]), f"≤ {m['target_ms']:,.0f}")
                for m in backend["measurements"]]
        lines += [table(("page", "first ms", "p50 ms", "p95 ms", "max ms", "HTML p50 ms",
                         "slowest /api p50 ms", "target (p95)"),
                        rows, (False, True, True, True, True, True, True, True)), ""]
    lines += [
        "**HTML**: the page's own document, received. **slowest /api**: the longest call to "
        "`/api/...` that the page completed before it was ready (its data); n/a: none, the "
        "overview's first numbers come over its live stream (`/api/live`, server-sent events), "
        "which has no end to time. The rest of **ready** is the browser's: scripts, layout and "
        "the first paint of the data. **first**: the first load after the gateway started; the "
        "gateway keeps the hour blocks of the long ranges warm from its start "
        "(`warden/store/rollup.py`), and a first view before they are built reads the records.",
        "",
        f"Machine: {result['load']}.",
    ]
    if result.get("postgres_skipped"):
        lines += ["", f"PostgreSQL not measured: {result['postgres_skipped']}"]
    return "\n".join(lines) + "\n"


def chromium_version() -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            return browser.version
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--refill", action="store_true", help="fill the data sets again")
    parser.add_argument("--max-age-min", type=float, default=60.0,
                        help="move a data set that ended longer ago than this to end now")
    args = parser.parse_args()
    sigterm_as_exit()
    check_browser()
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    backends, skipped = store_backends(args.no_postgres)
    admin_key = secrets.token_urlsafe(24)
    results: list[dict[str, Any]] = []
    pg_version = None
    for backend in backends:
        meta = dataset(backend, args.records, args.refill)
        bring_forward(backend, meta, 60 * args.max_age_min)
        if backend == "postgresql":
            store = open_store(meta["url"])
            assert isinstance(store, SqlStore)
            pg_version = server_version(store)
            store.close()
        measurements = measure_backend(backend, meta, admin_key, args.runs)
        public = {k: v for k, v in meta.items() if k != "url"}
        results.append({"backend": backend, "dataset": public, "measurements": measurements})
    result: dict[str, Any] = {
        "date": now_iso(), "machine": machine(),
        "versions": package_versions(PYTHON, ["warden", "sqlalchemy", "psycopg", "playwright"]),
        "chromium": chromium_version(), "sqlite": __import__("sqlite3").sqlite_version,
        "postgres_server": pg_version, "records": args.records, "runs": args.runs,
        "backends": results, "postgres_skipped": skipped,
        "load": load_note(load_before, os.getloadavg()),
    }
    save_results("ui", markdown(result), result)
    return 0 if all(m["ok"] for b in results for m in b["measurements"]) else 1


if __name__ == "__main__":
    run_main(main)
