"""The query benchmark: /api/requests and /api/stats over 1,000,000 stored records.

    .venv/bin/python bench/query.py [--records 1000000] [--repeat 30] [--no-postgres] [--refill]

For SQLite and PostgreSQL (the database of WARDEN_BENCH_POSTGRES_URL, by default
postgresql://postgres@127.0.0.1:5432/warden_bench, created when missing; skipped with a note
when unreachable) it fills a store with ``--records`` records spread over 30 days (several
models, deployments, keys, users, sessions and tags; about 2% errors; every record with its
payload), written through ``Store.write`` in large batches, exactly as the gateway's recorder
writes them. The filled databases are kept for the next run: the SQLite file under bench/.data/,
the PostgreSQL data in a schema of its own (``query_<records>``), both described by a JSON file
under bench/.data/; ``--refill`` starts again.

Then it starts the real gateway (``warden serve``) on that store and measures over HTTP on
loopback, one request at a time on a keep-alive connection, the latency of the dashboard's
queries: statistics of the last 24 hours and of the last 30 days (bucketed, grouped by model),
and the first page of requests, unfiltered and with each filter, and a next page. "Now" is the
end of the data set. Each query's first call after the gateway started is reported apart (the
queries in turn); then, once the gateway's start-up warm-up of the dashboard's statistics has
ended (its /metrics say so), each query runs ``--repeat`` times: the steady state. Targets:
p95 of /api/stats ≤ 300 ms, of /api/requests ≤ 100 ms. Writes bench/results/query.md and
bench/results/query.json.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import secrets
import statistics
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from harness import (
    BENCH,
    PYTHON,
    WARDEN,
    WORK,
    BenchError,
    Processes,
    free_port,
    machine,
    now_iso,
    package_versions,
    run_main,
    save_results,
    sigterm_as_exit,
    wait_http,
)
from recorder import (
    COMMON_PHRASE,
    RARE_PHRASE,
    Traffic,
    load_note,
    postgres_url,
    server_version,
    store_backends,
    table,
)

from warden.store import SqlStore, open_store
from warden.store.pages import TEXT_BUDGET_S
from warden.store.sql import engine_url

DATA = BENCH / ".data"
FILL_VERSION = 1  # bump when the generated traffic changes: cached data sets are refilled
DAYS = 30
FILL_BATCH = 5_000
STATS_TARGET_MS = 300.0
REQUESTS_TARGET_MS = 100.0
TEXT_BUDGET_MS = 1e3 * TEXT_BUDGET_S


# -- the data sets ------------------------------------------------------------------------------


def fill(store: SqlStore, records: int, end: float) -> float:
    """Write ``records`` records of 30 days ending at ``end``; returns the seconds it took."""
    traffic = Traffic(seed=11)
    entries = traffic.span(records, end - DAYS * 86400, end)
    t0 = time.perf_counter()
    done = 0
    while chunk := list(itertools.islice(entries, FILL_BATCH)):
        store.write([r for r, _ in chunk], [p for _, p in chunk])
        done += len(chunk)
        if done % 100_000 == 0:
            rate = done / (time.perf_counter() - t0)
            print(f"    {done:,} records ({rate:,.0f}/s)", flush=True)
    return time.perf_counter() - t0


def stored_count(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM requests")).scalar_one())


def database_mib(store: SqlStore) -> float:
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return round(pages * size / 2**20, 1)
        total = conn.exec_driver_sql(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'").scalar_one()
        return round(float(total) / 2**20, 1)


def postgres_store_url(base: str, schema: str) -> str:
    return (sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False))


def reset_postgres_schema(base: str, schema: str) -> None:
    admin = sa.create_engine(engine_url(base))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        admin.dispose()


def dataset(backend: str, records: int, refill: bool) -> dict[str, Any]:
    """The store URL and facts of the filled data set on ``backend``, filled when needed."""
    DATA.mkdir(parents=True, exist_ok=True)
    meta_path = DATA / f"query-{backend}-{records}.json"
    if backend == "sqlite":
        db = DATA / f"query-{records}.db"
        url, where = f"sqlite:///{db}", str(db)
    else:
        base = postgres_url()
        schema = f"query_{records}"
        url = postgres_store_url(base, schema)
        where = f"{sa.make_url(base).render_as_string(hide_password=True)} schema {schema}"
    meta: dict[str, Any] = {}
    if meta_path.exists() and not refill:
        meta = json.loads(meta_path.read_text())
    if meta.get("where") != where or meta.get("fill_version") != FILL_VERSION:
        meta = {}
    if meta:
        opened = time.perf_counter()
        store = open_store(url)  # runs the migrations this data set lacks
        assert isinstance(store, SqlStore)
        try:
            meta["open_s"] = round(time.perf_counter() - opened, 2)
            if stored_count(store) != records:
                meta = {}
            else:
                meta["database_mib"] = database_mib(store)
        finally:
            store.close()
        if meta:
            print(f"{backend}: reusing the data set at {where} (opened and migrated in "
                  f"{meta['open_s']} s)", flush=True)
    if not meta:
        if backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        else:
            reset_postgres_schema(postgres_url(), f"query_{records}")
        end = float(int(time.time()))
        print(f"{backend}: filling {where} with {records:,} records ...", flush=True)
        store = open_store(url)
        assert isinstance(store, SqlStore)
        try:
            seconds = fill(store, records, end)
            if store.dialect == "postgresql":
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            meta = {"where": where, "fill_version": FILL_VERSION, "records": records, "end": end,
                    "fill_s": round(seconds, 1), "fill_records_per_s": round(records / seconds),
                    "database_mib": database_mib(store), "filled": now_iso()}
        finally:
            store.close()
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    meta["url"] = url
    return meta


# -- the gateway and its client -----------------------------------------------------------------


@contextmanager
def gateway(procs: Processes, backend: str, url: str, admin_key: str) -> Iterator[int]:
    """``warden serve`` on the store at ``url``; yields its port."""
    data_dir = WORK / f"query-{backend}"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "warden.yaml"
    config.write_text(json.dumps({
        "server": {"data_dir": str(data_dir)},
        "store": {"url": url, "retention_days": None},  # no sweep of the 30-day-old records
        "admin_key": admin_key,
        "models": [{"name": "m", "deployments": [{"id": "fake", "provider": "fake"}]}],
    }))
    port = free_port()
    proc = procs.start(f"warden-query-{backend}",
                       [str(WARDEN), "serve", "--config", str(config), "--port", str(port),
                        "--log-level", "warning"])
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, 120)
    try:
        yield port
    finally:
        procs.stop(proc)


class Client:
    """GETs on one keep-alive connection, timed to the last byte of the answer."""

    def __init__(self, port: int, admin_key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"authorization": f"Bearer {admin_key}"}

    def get(self, path: str) -> tuple[float, Any]:
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        ms = 1e3 * (time.perf_counter() - t0)
        if resp.status != 200:
            raise BenchError(f"GET {path} answered {resp.status}: {body[:500]!r}")
        return ms, json.loads(body)

    def text(self, path: str) -> str:
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise BenchError(f"GET {path} answered {resp.status}: {body[:500]!r}")
        return body

    def close(self) -> None:
        self.conn.close()


def full_collections(metrics: str) -> dict[str, Any]:
    """The gateway's full (generation 2) garbage collections so far, from its /metrics: how
    many, their total, the bucket bound of the longest, and the objects frozen at start."""
    buckets: list[tuple[float, float]] = []
    out: dict[str, Any] = {}
    for line in metrics.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith('warden_gc_pause_seconds_bucket{generation="2"'):
            le = name.split('le="')[1].split('"')[0]
            buckets.append((float(le), float(value)))
        elif name == 'warden_gc_pause_seconds_count{generation="2"}':
            out["count"] = int(float(value))
        elif name == 'warden_gc_pause_seconds_sum{generation="2"}':
            out["total_ms"] = round(1e3 * float(value), 1)
        elif name == "warden_gc_frozen_objects":
            out["frozen_objects"] = int(float(value))
    if "count" not in out:
        raise BenchError("the gateway's /metrics has no warden_gc_pause_seconds")
    longest = next((le for le, n in sorted(buckets) if n >= out["count"]), math.inf)
    out["longest_ms_at_most"] = 1e3 * longest
    return out


def path(endpoint: str, **params: Any) -> str:
    pairs = [(k, v) for k, v in params.items() if not isinstance(v, list)]
    pairs += [(k, item) for k, v in params.items() if isinstance(v, list) for item in v]
    return f"/api/{endpoint}?{urllib.parse.urlencode(pairs)}"


def queries(client: Client, end: float) -> list[tuple[str, str]]:
    """(name, path) of every measured query; "now" is the end of the data set."""
    _, first = client.get(path("requests"))
    cursor = first["next_cursor"]
    sample = first["data"][0]
    return [
        ("stats: last 24 h, 1 h buckets, by model",
         path("stats", since=end - 86400, bucket=3600, group_by="model")),
        ("stats: last 30 days, 6 h buckets, by model",
         path("stats", since=end - DAYS * 86400, bucket=21600, group_by="model")),
        ("requests: first page", path("requests")),
        ("requests: next page (cursor)", path("requests", cursor=cursor)),
        ("requests: model", path("requests", model="claude-sonnet")),
        ("requests: key", path("requests", key=sample["key_id"])),
        ("requests: user", path("requests", user=sample["end_user"])),
        ("requests: status=error", path("requests", status="error")),
        ("requests: tag feature:qa", path("requests", tag=["feature:qa"])),
        ("requests: tag customer:cust-007", path("requests", tag=["customer:cust-007"])),
        ("requests: text in 1% of prompts", path("requests", q=COMMON_PHRASE.split()[3])),
        ("requests: text in 0.01% of prompts", path("requests", q=RARE_PHRASE.split()[3])),
    ]


def warmed_up(client: Client, timeout_s: float = 600.0) -> float:
    """Wait until the gateway's first warm-up of the dashboard's statistics has ended (its
    /metrics count it); returns how long it took."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = client.text("/metrics").splitlines()
        done = [ln for ln in lines if ln.startswith("warden_dashboard_warmups_total ")]
        if done and float(done[0].split()[1]) >= 1:
            took = [ln for ln in lines if ln.startswith("warden_dashboard_last_warmup_seconds ")]
            return float(took[0].split()[1])
        time.sleep(0.2)
    raise BenchError(f"the gateway's warm-up did not end within {timeout_s:.0f} s")


def measure(client: Client, name: str, url: str, repeat: int,
            first: tuple[float, Any]) -> dict[str, Any]:
    first_ms, body = first
    times = sorted(client.get(url)[0] for _ in range(repeat))
    data = body["data"]
    target = STATS_TARGET_MS if url.startswith("/api/stats") else REQUESTS_TARGET_MS
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"query": name, "path": url, "first_ms": round(first_ms, 1),
            "p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1),
            "max_ms": round(times[-1], 1), "rows": len(data),
            "more": bool(body.get("next_cursor")), "target_ms": target,
            "ok": p95 <= target, "times_ms": [round(t, 2) for t in times]}


# -- report -------------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Query API over 1,000,000 records" if result["records"] == 1_000_000 else
        f"# Query API over {result['records']:,} records",
        "",
        f"{result['date']} · {result['machine']['cpu_model']} · {result['machine']['cpus']} cores · "
        f"SQLite {result['sqlite']} · {result['postgres_server'] or 'PostgreSQL: not measured'}",
        "",
        f"{result['records']:,} records over {DAYS} days (4 models, 7 deployments, 40 keys, "
        "2,000 users, 20,000 sessions, 2 or 3 tags each, ~2% errors), each with its payload. "
        f"The real gateway (`warden serve`), one request at a time over HTTP on loopback; "
        f"first call after the gateway started, then {result['repeat']} more for p50 / p95 / max.",
        "",
    ]
    for backend in result["backends"]:
        meta = backend["dataset"]
        lines += [
            f"## {backend['backend']}",
            "",
            f"Data set: {meta['database_mib']:,} MiB; filled in {meta.get('fill_s', '?')} s "
            f"({meta.get('fill_records_per_s', 0):,} records/s through Store.write, batches of "
            f"{FILL_BATCH:,}).",
            "",
        ]
        rows = [(m["query"], f"{m['first_ms']:,.1f}", f"{m['p50_ms']:,.1f}",
                 f"**{m['p95_ms']:,.1f}** {'✅' if m['ok'] else '❌'}", f"{m['max_ms']:,.1f}",
                 f"{m['rows']}{' +' if m['more'] else ''}", f"≤ {m['target_ms']:.0f}")
                for m in backend["measurements"]]
        lines += [table(("query", "first ms", "p50 ms", "p95 ms", "max ms", "rows", "target"),
                        rows, (False, True, True, True, True, True, True)), ""]
        gcs = backend["full_collections"]
        lines += [
            f"The gateway's start-up warm-up of the dashboard's statistics took "
            f"{backend['warmup_s']} s.",
            "",
            f"Full garbage collections in the gateway from its start to the end of the run: "
            f"{gcs['count']}, {gcs['total_ms']:,.1f} ms in all, the longest ≤ "
            f"{gcs['longest_ms_at_most']:g} ms (`warden_gc_pause_seconds`); "
            f"{gcs['frozen_objects']:,} objects made at start frozen out of their walks.",
            "",
        ]
    lines += [
        "rows: records (or stats rows) in the answer; `+`: a next_cursor came with it. "
        "**first**: the first call after the gateway started (each query's in turn); for the "
        "statistics, that call reads the table and builds the hour blocks that the next calls "
        "reuse (`warden/store/rollup.py`), or waits for the gateway's start-up warm-up that is "
        "building them. The repeats run once that warm-up has ended (its duration is given per "
        "backend; `warden_dashboard_last_warmup_seconds`). **text**: one page reads payloads for at most "
        f"{TEXT_BUDGET_MS:.0f} ms (`warden/store/pages.py`); a page with fewer than 50 records "
        "and a cursor stopped there, and the next page goes on from where it stopped.",
        "",
        f"Machine: {result['load']}.",
    ]
    if result.get("postgres_skipped"):
        lines += ["", f"PostgreSQL not measured: {result['postgres_skipped']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--refill", action="store_true", help="fill the data sets again")
    args = parser.parse_args()
    sigterm_as_exit()
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    backends, skipped = store_backends(args.no_postgres)
    admin_key = secrets.token_urlsafe(24)
    results = []
    pg_version = None
    for backend in backends:
        meta = dataset(backend, args.records, args.refill)
        if backend == "postgresql":
            store = open_store(meta["url"])
            assert isinstance(store, SqlStore)
            pg_version = server_version(store)
            store.close()
        measurements = []
        with Processes(WORK) as procs, gateway(procs, backend, meta["url"], admin_key) as port:
            client = Client(port, admin_key)
            try:
                # Each query's first call after the start, in turn; then, once the start-up
                # warm-up has ended, the repeats (the steady state).
                measured = queries(client, meta["end"])
                firsts = [client.get(url) for _, url in measured]
                warm_s = warmed_up(client)
                print(f"  {backend:10} the gateway's start-up warm-up took {warm_s:.1f} s",
                      flush=True)
                for (name, url), first in zip(measured, firsts, strict=True):
                    m = measure(client, name, url, args.repeat, first)
                    print(f"  {backend:10} {name:45} first {m['first_ms']:8.1f}  p50 "
                          f"{m['p50_ms']:8.1f}  p95 {m['p95_ms']:8.1f} ms  rows {m['rows']}"
                          f"{'' if m['ok'] else '   MISSES THE TARGET'}", flush=True)
                    measurements.append(m)
                collections = full_collections(client.text("/metrics"))
            finally:
                client.close()
        public = {k: v for k, v in meta.items() if k != "url"}
        results.append({"backend": backend, "dataset": public, "measurements": measurements,
                        "full_collections": collections, "warmup_s": round(warm_s, 1)})
    result: dict[str, Any] = {
        "date": now_iso(), "machine": machine(),
        "versions": package_versions(PYTHON, ["warden", "sqlalchemy", "psycopg"]),
        "sqlite": __import__("sqlite3").sqlite_version, "postgres_server": pg_version,
        "records": args.records, "repeat": args.repeat, "backends": results,
        "postgres_skipped": skipped, "load": load_note(load_before, os.getloadavg()),
    }
    save_results("query", markdown(result), result)
    return 0 if all(m["ok"] for b in results for m in b["measurements"]) else 1


if __name__ == "__main__":
    run_main(main)
