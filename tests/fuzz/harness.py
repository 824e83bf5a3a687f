"""The gateway under fuzzing and the invariants every example must keep.

``Gate`` is one real gateway on loopback, backed by a real store (SQLite or PostgreSQL), in front
of a well-behaved fake upstream and a hostile one. Every exchange goes through ``Gate.send``,
which checks the answer at once (no 5xx but an upstream's 502/503/504; every error an OpenAI
error object; every stream well-formed server-sent events). Every /v1 request that reached the
gateway is written in a ledger; ``Gate.settle`` then waits for the recorder and checks the store
holds exactly one record per ledger entry, that nothing waits in the spool and that nothing was
rejected, dropped or found corrupt. Failures name the endpoint, the input and the answer.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from tests.helpers import GatewayThread
from warden.observe.record import Record
from warden.store.sql import engine_url
from warden.testing.hostile_upstream import HostileUpstream

ADMIN = "fuzz-admin-key-1"
BODY_LIMIT = 64 * 1024
"""The gateway's max_body_bytes under fuzzing: small, so bodies at and past it stay cheap."""
UPSTREAM_STATUSES = {502, 503, 504}
"""The only 5xx a client may see: an upstream that failed, timed out or is unavailable."""
V1_POSTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
SETTLE_S = 5.0


def gateway_config(store_url: str, data_dir: Path, echo_url: str, hostile_url: str
                   ) -> dict[str, Any]:
    """The config the fuzzed gateway runs (and the one a reload must keep when refused)."""
    sturdy = {"retries": 0, "breaker": {"failures": 1_000_000}, "timeout_s": 10}
    return {
        "admin_key": ADMIN,
        "server": {"max_body_bytes": BODY_LIMIT, "data_dir": str(data_dir)},
        "store": {"url": store_url},
        "guard": {"policies": {"p": {
            "input": [{"scanner": "secrets", "action": "redact"},
                      {"scanner": "pii", "action": "redact"},
                      {"scanner": "injection", "action": "flag"},
                      {"scanner": "hidden_text", "action": "block"}],
            "output": [{"scanner": "secrets", "action": "redact"},
                       {"scanner": "toxicity", "action": "flag"}]}}},
        "models": [
            {"name": "chat", "routing": sturdy,
             "deployments": [{"id": "up", "provider": "openai", "base_url": echo_url}]},
            {"name": "echo", "deployments": [{"id": "f", "provider": "fake"}]},
            {"name": "guarded", "guard": "p", "routing": sturdy,
             "deployments": [{"id": "g", "provider": "openai", "base_url": echo_url}]},
            {"name": "emb", "deployments": [{"id": "e", "provider": "fake"}]},
            {"name": "hostile", "routing": sturdy,
             "deployments": [{"id": "h", "provider": "openai", "base_url": hostile_url}]},
        ]}


MODELS = ("chat", "echo", "guarded", "emb", "hostile")
UPSTREAM_MODELS = {"chat", "guarded", "hostile"}
"""Models served through a real upstream: only their requests may end in 502/503/504."""


@dataclass
class Exchange:
    """One request and its answer."""

    method: str
    path: str
    note: str  # what was sent, shortened for messages
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut: bool = False  # the connection ended before the answer did

    def describe(self) -> str:
        shown = self.body[:800] + (b"..." if len(self.body) > 800 else b"")
        return (f"{self.method} {self.path} with {self.note}\n  -> {self.status}"
                f"{' (cut short)' if self.cut else ''} "
                f"{self.headers.get('content-type', '')!r}: {shown!r}")


def shorten(data: bytes | str, keep: int = 600) -> str:
    """``data`` as a repr of at most about ``keep`` characters (the ends kept)."""
    if len(data) <= keep:
        return repr(data)
    half = keep // 2
    return f"{data[:half]!r} ...({len(data)} in all)... {data[-half:]!r}"


class Client:
    """One keep-alive connection to the gateway; header values go out as the bytes given."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.used = 0  # requests sent on this connection
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def send(self, ex: Exchange, body: bytes | None, headers: dict[str, bytes | str]) -> None:
        """Fill in ``ex``'s answer. An answer cut short is kept with ``ex.cut`` set; no answer at
        all leaves status 0. A request goes again only when a kept-alive connection turns out closed
        before the answer began (a server closes an idle connection); nothing else is retried,
        since a second request would leave a second record."""
        for fresh in (self.used == 0, True):
            try:
                self.used += 1
                self.conn.request(ex.method, ex.path, body=body, headers=headers)
                resp = self.conn.getresponse()
                break
            except TimeoutError:
                self.reconnect()
                raise AssertionError(f"no answer within {self.timeout} s to "
                                     f"{ex.method} {ex.path} with {ex.note}") from None
            except (ConnectionError, http.client.HTTPException) as exc:
                self.reconnect()
                if fresh:  # not a kept-alive connection the server had closed: no answer
                    ex.body = f"no answer: {exc!r}".encode()
                    return
        ex.status = resp.status
        ex.headers = {k.lower(): v for k, v in resp.getheaders()}
        try:
            ex.body = resp.read()
        except http.client.IncompleteRead as exc:
            ex.body, ex.cut = exc.partial, True
        except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
            ex.body, ex.cut = f"(unreadable: {exc!r})".encode(), True
        if ex.cut or resp.will_close or ex.status >= 500:
            self.reconnect()  # the server may close after an error without saying so

    def reconnect(self) -> None:
        self.used = 0
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def close(self) -> None:
        self.conn.close()


def protocol_rejection(ex: Exchange) -> bool:
    """Whether the HTTP server refused the request before the app saw it (a header it cannot
    parse): such a request never reached the gateway, so it leaves no record."""
    return (ex.status == 400 and "x-request-id" not in ex.headers
            and ex.body.startswith(b"Invalid HTTP request"))


def check_answer(ex: Exchange, upstream: bool) -> None:
    """The answer of any endpoint: no server error but an upstream's, errors as OpenAI error
    objects, streams as well-formed server-sent events."""
    allowed = UPSTREAM_STATUSES if upstream else set()
    assert ex.status, f"the gateway closed the connection without an answer\n{ex.describe()}"
    assert not ex.cut, f"the gateway cut its answer short\n{ex.describe()}"
    assert ex.status < 500 or ex.status in allowed, (
        f"server error {ex.status} (allowed here: {sorted(allowed) or 'none'})\n{ex.describe()}")
    ctype = ex.headers.get("content-type", "")
    if ex.status >= 400 and ex.status != 405 and not protocol_rejection(ex):
        try:
            error = json.loads(ex.body)["error"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError(f"an error that is not an OpenAI error object\n{ex.describe()}"
                                 ) from None
        assert isinstance(error, dict) and isinstance(error.get("message"), str) \
            and error["message"], f"an error without a message\n{ex.describe()}"
    if ex.status == 200 and ctype.startswith("text/event-stream"):
        check_events(ex)
    elif ex.status == 200 and ctype.startswith("application/json"):
        try:
            json.loads(ex.body)
        except ValueError:
            raise AssertionError(f"a 200 whose JSON body does not parse\n{ex.describe()}"
                                 ) from None


def check_events(ex: Exchange) -> None:
    """A stream is ``data:`` lines of JSON objects; it ends with [DONE] or an error event."""
    try:
        text = ex.body.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError(f"a stream that is not UTF-8\n{ex.describe()}") from None
    events = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    assert events, f"a stream without events\n{ex.describe()}"
    for data in events[:-1]:
        try:
            assert isinstance(json.loads(data), dict)
        except (ValueError, AssertionError):
            raise AssertionError(f"a stream event that is not a JSON object: {data[:200]!r}\n"
                                 f"{ex.describe()}") from None
    last = events[-1]
    if last != "[DONE]":
        try:
            error = json.loads(last)["error"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError(f"a stream that ends neither with [DONE] nor with an error "
                                 f"event\n{ex.describe()}") from None
        assert isinstance(error, dict) and error.get("message"), ex.describe()


class Gate:
    """The gateway under fuzzing, its store and its upstreams (see the module docstring)."""

    def __init__(self, gw: GatewayThread, store_url: str, hostile: HostileUpstream,
                 backend: str, config_path: Path) -> None:
        self.gw = gw
        self.backend = backend
        self.hostile = hostile
        self.config_path = config_path
        self.client = Client(gw.port)
        self._engine = sa.create_engine(engine_url(store_url))
        self.built: Counter[str] = Counter()
        gw.app.state.keeper.observers.append(self._observe)
        self.ledger: list[Exchange] = []
        self._rows_before = self.rows()
        self._lost_before = (0, 0, 0)  # the recorder's rejected, dropped, corrupt at the last settle

    def _observe(self, record: Record) -> None:
        self.built[record.request_id] += 1

    @property
    def recorder(self) -> Any:
        return self.gw.app.state.keeper.recorder

    def close(self) -> None:
        self.client.close()
        self._engine.dispose()

    def rows(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM requests")).scalar_one())

    def send(self, method: str, path: str, note: str, body: bytes | None = None,
             headers: dict[str, bytes | str] | None = None, *, upstream: bool = False,
             admin: bool = False) -> Exchange:
        """Send one request and check its answer; a /v1 POST that reached the gateway goes in
        the ledger and must have built exactly one record."""
        sent: dict[str, bytes | str] = dict(headers or {})
        if admin:
            sent["authorization"] = f"Bearer {ADMIN}"
        ex = Exchange(method, path, note)
        before = sum(self.built.values())
        self.client.send(ex, body, sent)
        recorded = method == "POST" and path in V1_POSTS and not protocol_rejection(ex)
        if recorded:
            self.ledger.append(ex)
        check_answer(ex, upstream)
        if recorded:
            self._check_built(ex, before)
        return ex

    def _check_built(self, ex: Exchange, before: int) -> None:
        """The request built one record (a stream's is built once its last event has gone, so
        give it a moment)."""
        deadline = time.monotonic() + 2
        while sum(self.built.values()) <= before and time.monotonic() < deadline:
            time.sleep(0.002)
        got = sum(self.built.values()) - before
        assert got == 1, f"the request built {got} records, not one\n{ex.describe()}"

    def settle(self) -> None:
        """Wait for the recorder, then check the store has one record per ledger entry, the spool
        is empty and nothing was rejected, dropped or corrupt; /healthz answers. Starts a new
        ledger (also when a check fails, so that one failure does not fail the next test)."""
        expected = len(self.ledger)
        ledger, self.ledger = self.ledger, []
        deadline = time.monotonic() + SETTLE_S
        rec = self.recorder
        while time.monotonic() < deadline:
            stats = rec.stats()
            if (stats.queue_depth == 0 and stats.spooled == 0
                    and self.rows() - self._rows_before >= expected):
                break
            time.sleep(0.05)
        time.sleep(0.3)  # one more flush: a record written twice would show now
        stats = rec.stats()
        stored = self.rows() - self._rows_before
        self._rows_before += stored
        problems = []
        if stored != expected:
            problems.append(f"the store holds {stored} new record(s) for {expected} request(s)")
        if stats.spooled or stats.queue_depth:
            problems.append(f"{stats.spooled} record(s) stuck in the spool, "
                            f"{stats.queue_depth} in the queue")
        lost = (stats.rejected, stats.dropped, stats.corrupt)
        rejected, dropped, corrupt = (now - was for now, was in zip(lost, self._lost_before,
                                                                   strict=True))
        self._lost_before = lost
        if rejected or dropped or corrupt:
            problems.append(f"the recorder rejected {rejected}, dropped {dropped}, found "
                            f"{corrupt} corrupt")
        if problems:
            raise AssertionError(
                f"[{self.backend}] " + "; ".join(problems) + f" (last store error: "
                f"{stats.last_error})\n" + self._suspects(ledger))
        health = Exchange("GET", "/healthz", "nothing")
        self.client.send(health, None, {})
        assert health.status == 200, health.describe()

    def _suspects(self, ledger: list[Exchange]) -> str:
        """The requests whose id is missing from the store or appears more than once, and the
        rejected records' ids."""
        with self._engine.connect() as conn:
            stored = Counter(conn.execute(sa.text("SELECT request_id FROM requests")).scalars())
        ids = Counter(ex.headers.get("x-request-id", "") for ex in ledger)
        lines, unnamed = [], [ex for ex in ledger if not ex.headers.get("x-request-id")]
        if unnamed:
            lines.append(f"- {len(unnamed)} request(s) answered without an x-request-id, e.g.:")
            lines += [f"  {ex.describe()[:400]}" for ex in unnamed[:3]]
        for ex in ledger:
            rid = ex.headers.get("x-request-id", "")
            if rid and (stored[rid] != 1 or ids[rid] != 1):
                lines.append(f"- id {rid!r}: {ids[rid]} request(s), {stored[rid]} record(s): "
                             f"{ex.describe()[:400]}")
        rejected = self.recorder._spool.rejected_path
        if Path(rejected).exists():
            lines.append(f"rejected records ({rejected}):")
            lines += [f"- {shorten(line, 400)}"
                      for line in Path(rejected).read_bytes().splitlines()[:10]]
        return "\n".join(lines[:40]) or "(no single request stands out)"


EXAMPLES = int(os.environ.get("WARDEN_FUZZ_EXAMPLES", "100"))
"""Examples per property (WARDEN_FUZZ_EXAMPLES); some tests take a fraction of it."""
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""Reproducible in CI (derandomized, no example database), no deadline on a loaded machine."""
