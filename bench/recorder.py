"""The recorder benchmark: how many records/s reach the store, on SQLite and PostgreSQL.

    .venv/bin/python bench/recorder.py [--records 100000] [--batch 500] [--no-postgres]

For each backend, on an empty store each time (a SQLite file in a temporary folder; a fresh
schema in the database of WARDEN_BENCH_POSTGRES_URL, by default
postgresql://postgres@127.0.0.1:5432/warden_bench, created when missing):

* **recorder**: ``Recorder.submit`` of every record (the producer waits while the queue is
  90% full, as a gateway faster than its store would spool), until ``written`` counts them all,
  i.e. until every batch is committed. records/s = records / that time.
* **Store.write**: the same records in batches of ``--batch``, straight to ``Store.write``;
  records/s, and the CPU time of the calling thread per record (what the recorder's writer
  thread takes from the gateway's CPU, holding the GIL).

Every record carries what the gateway writes: attempts, tags, metadata, and a payload of a few
hundred characters (policy full). Afterwards the store is checked to hold every record, payload
and tag exactly once. Target: at least 10,000 records/s for both. Writes bench/results/recorder.md
and bench/results/recorder.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from harness import PYTHON, BenchError, machine, now_iso, package_versions, run_main, save_results

from warden.observe.record import AttemptRecord, Payload, Record, Status
from warden.observe.recorder import Recorder
from warden.store import SqlStore, open_store
from warden.store.sql import engine_url
from warden.testing.postgres import fresh_schema

TARGET_RPS = 10_000
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/warden_bench"

# -- realistic traffic ----------------------------------------------------------------------------

# public model -> (deployments, provider, upstream model, $ per 1M input, $ per 1M output)
MODELS: dict[str, tuple[tuple[str, ...], str, str, float, float]] = {
    "gpt-4o": (("azure-eu", "openai-us"), "openai", "gpt-4o-2024-08-06", 2.5, 10.0),
    "gpt-4o-mini": (("openai-us", "openai-eu"), "openai", "gpt-4o-mini-2024-07-18", 0.15, 0.6),
    "claude-sonnet": (("anthropic",), "anthropic", "claude-sonnet-4-20250514", 3.0, 15.0),
    "llama-3-8b": (("vllm-a", "vllm-b"), "openai", "meta-llama/Meta-Llama-3-8B-Instruct", 0, 0),
}
MODEL_WEIGHTS = (35, 40, 15, 10)
TEAMS = ("search", "support", "growth", "research", "platform", "legal")
FEATURES = ("chat", "summarize", "classify", "extract", "translate", "autocomplete", "qa", "agent")
ERRORS = ((502, "upstream_error", "upstream answered 502: bad gateway"),
          (503, "service_unavailable", "every deployment of the model is unavailable"),
          (429, "rate_limit_error", "rate limit of key exceeded: 60 requests per minute"),
          (500, "api_error", "upstream connection reset while reading the answer"))
# Phrases that the query benchmark searches for: in 1% and in 0.01% of the prompts.
COMMON_PHRASE, COMMON_SHARE = "How do I autoscale Kubernetes pods?", 0.01
RARE_PHRASE, RARE_SHARE = "Where is the Zanzibar archive?", 0.0001
_VOCABULARY = ("the a report customer order invoice refund shipping delay warranty contract clause "
          "summary meeting notes action items python function error stack trace database index "
          "query latency budget forecast quarter revenue churn onboarding email draft polite "
          "translate french german spanish japanese summarize classify sentiment positive "
          "negative neutral extract names dates amounts address table json schema field "
          "please answer briefly explain why how what when where which policy security "
          "password reset account login access token expired renew subscription plan")


class Traffic:
    """Deterministic records and payloads as the gateway writes them, spread over a time range.

    ``keys`` API keys, ``users`` end users, ``sessions`` sessions; about ``error_rate`` of the
    requests fail upstream (with retries in their attempts), 0.5% are blocked by a guard."""

    def __init__(self, seed: int = 1, keys: int = 40, users: int = 2_000, sessions: int = 20_000,
                 error_rate: float = 0.02) -> None:
        self.rng = random.Random(seed)
        self.keys = [f"key-{i:03d}" for i in range(keys)]
        self.key_team = {k: TEAMS[i % len(TEAMS)] for i, k in enumerate(self.keys)}
        self.users = [f"user-{i:05d}" for i in range(users)]
        self.sessions = sessions
        self.error_rate = error_rate
        self.models = list(MODELS)
        self.words = _VOCABULARY.split()
        self.sentences = [self._sentence() for _ in range(4_000)]

    def _sentence(self) -> str:
        words = self.rng.choices(self.words, k=self.rng.randint(6, 18))
        return " ".join(words).capitalize() + "."

    def _text(self, sentences: int) -> str:
        return " ".join(self.rng.choices(self.sentences, k=sentences))

    def one(self, started_at: float) -> tuple[Record, Payload]:
        rng = self.rng
        model = rng.choices(self.models, MODEL_WEIGHTS)[0]
        deployments, provider, upstream, price_in, price_out = MODELS[model]
        deployment = rng.choice(deployments)
        key = rng.choice(self.keys)
        stream = rng.random() < 0.6
        rid = f"{rng.getrandbits(96):024x}"  # like the gateway's 12 random bytes
        roll = rng.random()
        status: Status = "ok"
        http, error_type, error_message = 200, None, None
        latency = rng.lognormvariate(0.0, 0.7)
        attempts = [AttemptRecord(model=model, deployment=deployment, provider=provider,
                                  started_s=0.002, latency_s=latency - 0.004, status=200)]
        if roll < self.error_rate:
            status = "error"
            http, error_type, error_message = rng.choice(ERRORS)
            attempts = [AttemptRecord(model=model, deployment=d, provider=provider,
                                      started_s=0.002 + n * latency / 3, latency_s=latency / 3,
                                      status=http if http != 500 else 0, error_type=error_type,
                                      error=error_message)
                        for n, d in enumerate((deployment, *deployments)[:3])]
        elif roll < self.error_rate + 0.005:
            status, http, error_type = "blocked", 400, "content_blocked"
            error_message = "the input was blocked by guard 'pii': email address"
            attempts = []
        elif roll < self.error_rate + 0.04:  # a retry that worked
            attempts.insert(0, AttemptRecord(model=model, deployment=deployment, provider=provider,
                                             started_s=0.001, latency_s=0.2, status=503,
                                             error_type="upstream_error", error="overloaded"))
        ok = status == "ok"
        input_tokens = rng.randint(20, 1_500) if status != "blocked" else 0
        output_tokens = rng.randint(5, 700) if ok else 0
        ttft = rng.uniform(0.05, 0.6) * min(latency, 1.0) if ok and stream else None
        speed = None
        if output_tokens:
            speed = output_tokens / (latency - ttft) if ttft is not None else output_tokens / latency
        cost = None
        if ok and (price_in or price_out):
            cost = (input_tokens * price_in + output_tokens * price_out) / 1e6
        elif ok and model == "llama-3-8b":
            cost = 0.0
        feature = rng.choice(FEATURES)
        user = rng.choice(self.users)
        tags = {"env": "prod" if rng.random() < 0.9 else "staging", "feature": feature}
        if rng.random() < 0.3:
            tags["customer"] = f"cust-{rng.randint(1, 200):03d}"
        record = Record(
            request_id=rid, trace_id=f"{rng.getrandbits(128):032x}", started_at=started_at,
            ended_at=started_at + latency, api="chat", model=model, status=status,
            http_status=http, latency_s=latency, ttft_s=ttft, stream=stream,
            deployment=deployment if status != "blocked" else None,
            provider=provider if status != "blocked" else None,
            upstream_model=upstream if status != "blocked" else None, key_id=key,
            team=self.key_team[key], end_user=user,
            session_id=f"sess-{rng.randrange(self.sessions):06d}", error_type=error_type,
            error_message=error_message, input_tokens=input_tokens, output_tokens=output_tokens,
            cached_tokens=rng.choice((0, 0, 0, 64, 128)) if ok else 0,
            output_tokens_per_s=speed, cost_usd=cost, cache="miss" if rng.random() < 0.2 else "bypass",
            attempts=attempts, tags=tags,
            metadata={"app": feature, "version": f"1.{rng.randint(0, 9)}.0",
                      "session_id": f"s{rng.randint(1, 999)}", "trial": rng.random() < 0.1},
        )
        question = self._text(rng.randint(2, 4))
        roll = rng.random()
        if roll < RARE_SHARE:
            question += f" {RARE_PHRASE}"
        elif roll < COMMON_SHARE:
            question += f" {COMMON_PHRASE}"
        messages = [{"role": "system", "content": self._text(1)},
                    {"role": "user", "content": question}]
        completion = self._text(rng.randint(1, 3)) if ok else None
        payload = Payload(request_id=rid, policy="full", prompt=orjson.dumps(messages).decode(),
                          completion=completion)
        return record, payload

    def span(self, n: int, start: float, end: float) -> Iterator[tuple[Record, Payload]]:
        """``n`` requests started in [start, end), in order."""
        step = (end - start) / n
        for i in range(n):
            yield self.one(start + i * step + self.rng.random() * step)


# -- stores ---------------------------------------------------------------------------------------


def postgres_url() -> str:
    return os.environ.get("WARDEN_BENCH_POSTGRES_URL", DEFAULT_PG)


def ensure_postgres_database(url: str) -> str | None:
    """Create the database of ``url`` when missing. None when ready, else why PostgreSQL cannot
    be used (unreachable server)."""
    target = engine_url(url)
    try:
        probe = sa.create_engine(target.set(database="postgres"),
                                 connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
        try:
            with probe.connect() as conn:
                exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                      {"d": target.database}).first()
                if exists is None:
                    conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
        finally:
            probe.dispose()
    except sa.exc.OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    return None


def store_backends(no_postgres: bool) -> tuple[list[str], str | None]:
    """The backends to measure: SQLite, and PostgreSQL unless ``no_postgres`` or it cannot be
    reached (then the second value says why)."""
    if no_postgres:
        return ["sqlite"], None
    skipped = ensure_postgres_database(postgres_url())
    if skipped is None:
        return ["sqlite", "postgresql"], None
    print(f"note: PostgreSQL at {sa.make_url(postgres_url()).render_as_string(True)} "
          f"cannot be reached ({skipped}); measuring SQLite only", flush=True)
    return ["sqlite"], skipped


@contextmanager
def empty_store(backend: str) -> Iterator[SqlStore]:
    """An empty, migrated store on ``backend`` (sqlite or postgresql), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
            store = open_store(f"sqlite:///{tmp}/warden.db")
            assert isinstance(store, SqlStore)
            try:
                yield store
            finally:
                store.close()
    else:
        with fresh_schema(postgres_url(), "bench_recorder") as url:
            store = open_store(url)
            assert isinstance(store, SqlStore)
            try:
                yield store
            finally:
                store.close()


def counts(store: SqlStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("requests", "payloads", "request_tags")}


def check_stored(store: SqlStore, entries: Sequence[tuple[Record, Payload]]) -> None:
    want = {"requests": len(entries), "payloads": len(entries),
            "request_tags": sum(len(r.tags) for r, _ in entries)}
    got = counts(store)
    if got != want:
        raise BenchError(f"the store holds {got}, expected {want}")


# -- measurements ---------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu_s(store: SqlStore) -> float | None:
    """CPU seconds of the PostgreSQL backends connected to the store's database, when the server
    runs on this machine (read from /proc); None for SQLite or a remote server."""
    if store.dialect != "postgresql":
        return None
    with store.engine.connect() as conn:
        pids = conn.exec_driver_sql("SELECT pid FROM pg_stat_activity "
                                    "WHERE datname = current_database()").scalars().all()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def per_record_us(before: float | None, after: float | None, n: int) -> float | None:
    return None if before is None or after is None else round(1e6 * (after - before) / n, 1)


def through_recorder(store: SqlStore, entries: Sequence[tuple[Record, Payload]], tmp: Path,
                     batch: int, queue_size: int) -> dict[str, Any]:
    """Submit every entry to a Recorder on ``store``; time until all are committed."""
    recorder = Recorder(store, tmp / "spool.jsonl", batch_size=batch, queue_size=queue_size)
    recorder.start()
    high = int(queue_size * 0.9)
    waits = 0
    server0 = server_cpu_s(store)
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        for record, payload in entries:
            while recorder.queue_depth >= high:
                waits += 1
                time.sleep(0.0005)
            recorder.submit(record, payload)
        submitted = time.perf_counter()
        while recorder.written < len(entries):
            if recorder.store_errors or recorder.dropped:
                raise BenchError(f"the recorder failed: {recorder.stats()}")
            time.sleep(0.0005)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        recorder.close(30)
    server = per_record_us(server0, server_cpu_s(store), len(entries))
    stats = recorder.stats()
    if stats.spooled or stats.dropped or stats.rejected:
        raise BenchError(f"records went to the spool or were lost: {stats}")
    check_stored(store, entries)
    return {"records": len(entries), "elapsed_s": round(elapsed, 3),
            "records_per_s": round(len(entries) / elapsed),
            "submit_s": round(submitted - t0, 3), "batches": stats.batches,
            "producer_waits": waits, "process_cpu_s": round(cpu, 3),
            "cpu_us_per_record": round(1e6 * cpu / len(entries), 1),
            "server_cpu_us_per_record": server}


def store_writes(store: SqlStore, entries: Sequence[tuple[Record, Payload]],
                 batch: int) -> dict[str, Any]:
    """Store.write in batches of ``batch``, timed, with this thread's CPU time."""
    chunks = [([r for r, _ in entries[i:i + batch]], [p for _, p in entries[i:i + batch]])
              for i in range(0, len(entries), batch)]
    server0 = server_cpu_s(store)
    cpu0, t0 = time.thread_time(), time.perf_counter()
    for records, payloads in chunks:
        store.write(records, payloads)
    elapsed = time.perf_counter() - t0
    cpu = time.thread_time() - cpu0
    server = per_record_us(server0, server_cpu_s(store), len(entries))
    check_stored(store, entries)
    return {"records": len(entries), "batch": batch, "elapsed_s": round(elapsed, 3),
            "records_per_s": round(len(entries) / elapsed),
            "thread_cpu_s": round(cpu, 3), "cpu_us_per_record": round(1e6 * cpu / len(entries), 1),
            "server_cpu_us_per_record": server, "ms_per_batch": round(1e3 * elapsed / len(chunks), 2)}


def best_of(runs: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The fastest of ``runs`` measurements, with all of their rates."""
    results = [measure() for _ in range(runs)]
    best = dict(max(results, key=lambda r: r["records_per_s"]))
    best["all_records_per_s"] = [r["records_per_s"] for r in results]
    return best


# -- report ---------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def load_note(before: tuple[float, ...], after: tuple[float, ...]) -> str:
    return (f"load average {before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f} before, "
            f"{after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f} after")


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for m in result["measurements"]:
        ok = "✅" if m["records_per_s"] >= TARGET_RPS else "❌"
        server = m.get("server_cpu_us_per_record")
        rows.append((m["backend"], m["path"], f"{m['records']:,}", f"{m['elapsed_s']:.2f}",
                     f"**{m['records_per_s']:,}** {ok}", f"{m['cpu_us_per_record']:.0f}",
                     "n/a" if server is None else f"{server:.0f}",
                     ", ".join(f"{x:,}" for x in m["all_records_per_s"])))
    lines = [
        "# Recorder and store ingest",
        "",
        f"{result['date']} · {result['machine']['cpu_model']} · {result['machine']['cpus']} cores · "
        f"SQLite {result['sqlite']} · {result['postgres_server'] or 'PostgreSQL: not measured'} · "
        f"SQLAlchemy {result['versions']['sqlalchemy']} · psycopg {result['versions']['psycopg']}",
        "",
        f"{result['records']:,} records with attempts, tags, metadata and a payload (policy full, "
        f"{result['payload_chars']} characters on average) into an empty store; batches of "
        f"{result['batch']}; best of {result['runs']} runs (all runs in the last column).",
        "",
        table(("backend", "path", "records", "seconds", "records/s", "CPU µs/record",
               "server CPU µs/record", "runs"),
              rows, (False, False, True, True, True, True, True, False)),
        "",
        f"Target: ≥ {TARGET_RPS:,} records/s on both paths. **recorder**: `Recorder.submit` of "
        "every record until `written` counts them all (every batch committed); CPU = this whole "
        "process (producer and writer thread). **Store.write**: batches straight to the store; "
        "CPU = the calling thread, i.e. what the recorder's writer takes from the gateway's CPU "
        "(SQLite's work included: it runs in that thread, without the GIL). **server CPU**: the "
        "PostgreSQL backends serving the store's database.",
        "",
        f"Machine: {result['load']}.",
    ]
    if result.get("postgres_skipped"):
        lines += ["", f"PostgreSQL not measured: {result['postgres_skipped']}"]
    return "\n".join(lines) + "\n"


def server_version(store: SqlStore) -> str:
    with store.engine.connect() as conn:
        text = str(conn.exec_driver_sql("SELECT version()").scalar_one())
    return " ".join(text.split()[:2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="the recorder's batch size")
    parser.add_argument("--queue-size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2, help="measurements per row; the best is kept")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"building {args.records:,} records ...", flush=True)
    traffic = Traffic(seed=7)
    now = time.time()
    entries = list(traffic.span(args.records, now - 3600, now))
    payload_chars = round(sum(len(p.prompt or "") + len(p.completion or "") for _, p in entries)
                          / len(entries))
    backends, skipped = store_backends(args.no_postgres)
    pg_version = None
    measurements = []
    for backend in backends:
        def via_recorder(backend: str = backend) -> dict[str, Any]:
            with empty_store(backend) as store, tempfile.TemporaryDirectory() as tmp:
                return through_recorder(store, entries, Path(tmp), args.batch, args.queue_size)

        def via_write(backend: str = backend) -> dict[str, Any]:
            nonlocal pg_version
            with empty_store(backend) as store:
                if backend == "postgresql":
                    pg_version = server_version(store)
                return store_writes(store, entries, args.batch)

        for path, measure in (("recorder", via_recorder), ("Store.write", via_write)):
            print(f"{backend}: {path} ...", flush=True)
            m = best_of(args.runs, measure)
            m.update(backend=backend, path=path)
            print(f"    {m['records_per_s']:,} records/s (runs: {m['all_records_per_s']}), "
                  f"{m['cpu_us_per_record']} µs CPU/record, server "
                  f"{m['server_cpu_us_per_record']} µs CPU/record", flush=True)
            measurements.append(m)
    result: dict[str, Any] = {
        "date": now_iso(), "machine": machine(),
        "versions": package_versions(PYTHON, ["warden", "sqlalchemy", "psycopg"]),
        "sqlite": __import__("sqlite3").sqlite_version, "postgres_server": pg_version,
        "records": args.records, "batch": args.batch, "queue_size": args.queue_size,
        "runs": args.runs, "payload_chars": payload_chars, "measurements": measurements,
        "postgres_skipped": skipped,
        "load": load_note(load_before, os.getloadavg()),
    }
    save_results("recorder", markdown(result), result)
    return 0 if all(m["records_per_s"] >= TARGET_RPS for m in measurements) else 1


if __name__ == "__main__":
    run_main(main)
