"""The recorder stores every submitted record, off the caller's path, and loses none while the
store fails: they wait in the spool and are replayed. Runs on SQLite and, when
WARDEN_TEST_POSTGRES_URL is set, on PostgreSQL (a set but unreachable one fails the tests)."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.store.conftest import BACKENDS, POSTGRES_URL
from tests.store.factory import full_record, make_record
from warden.observe.record import Payload, Record
from warden.observe.recorder import Recorder
from warden.observe.spool import Spool, encode
from warden.store import (
    Page,
    RecordsRefused,
    RequestDetail,
    RequestFilter,
    StatsQuery,
    StatsRow,
    Store,
    StoreError,
    open_store,
)
from warden.store import sql as sql_module
from warden.testing.postgres import fresh_schema


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An open, empty store on each backend."""
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path}/data/warden.db" if request.param == "sqlite"
               else stack.enter_context(fresh_schema(POSTGRES_URL, "test")))
        opened = open_store(url)
        yield opened
        opened.close()


MakeRecorder = Callable[..., Recorder]


@pytest.fixture
def make_recorder(tmp_path: Path) -> Iterator[MakeRecorder]:
    """Recorders spooling to tmp_path/spool/spool.jsonl, with short intervals; closed after the test."""
    made: list[Recorder] = []

    def make(store: Store, **options: Any) -> Recorder:
        options = {"flush_interval_s": 0.01, "retry_interval_s": 0.05, **options}
        made.append(Recorder(store, tmp_path / "spool" / "spool.jsonl", **options))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close(timeout=5)


class FaultyStore(Store):
    """A real store whose writes fail while ``failing`` is set, wait while ``gate`` is clear, and
    always refuse a batch holding a ``refused`` request id (RecordsRefused), or an ``unnamed``
    one (a StoreError that does not say it is a refusal). ``order`` lists the ids written."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.failing = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.refused: set[str] = set()
        self.unnamed: set[str] = set()
        self.order: list[str] = []

    def write(self, records: list[Record], payloads: list[Payload]) -> None:
        self.entered.set()
        self.gate.wait()
        if self.failing.is_set():
            raise StoreError("injected outage")
        if any(r.request_id in self.refused for r in records):
            raise RecordsRefused("injected refusal")
        if any(r.request_id in self.unnamed for r in records):
            raise StoreError("injected refusal, unnamed")
        self.inner.write(records, payloads)
        self.order += [r.request_id for r in records]

    def get(self, request_id: str) -> RequestDetail | None:
        return self.inner.get(request_id)

    def query(self, where: RequestFilter, cursor: str | None = None, limit: int = 50) -> Page:
        return self.inner.query(where, cursor, limit)

    def stats(self, query: StatsQuery) -> list[StatsRow]:
        return self.inner.stats(query)

    def add_feedback(self, request_id: str, score: float | None = None, label: str | None = None,
                     comment: str | None = None, source: str = "api", at: float | None = None) -> int:
        return self.inner.add_feedback(request_id, score, label, comment, source, at)

    def purge(self, before: float) -> int:
        return self.inner.purge(before)

    def close(self) -> None:
        self.inner.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


def stored_ids(store: Store) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        page = store.query(RequestFilter(), cursor, limit=1000)
        found += [r.request_id for r in page.records]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def batch(n: int, start: int = 0) -> list[tuple[Record, Payload | None]]:
    return [(make_record(i), Payload(f"r{i:05d}", "full", f"prompt {i}", f"answer {i}") if i % 3 else None)
            for i in range(start, start + n)]


def ids(n: int, start: int = 0) -> list[str]:
    return [f"r{i:05d}" for i in range(start, start + n)]


def submit_all(recorder: Recorder, entries: list[tuple[Record, Payload | None]]) -> None:
    for record, payload in entries:
        recorder.submit(record, payload)


def test_every_submitted_record_is_stored_with_equal_fields(store: Store,
                                                            make_recorder: MakeRecorder) -> None:
    entries = [full_record(), *batch(1500)]
    recorder = make_recorder(store, batch_size=200)
    recorder.start()
    submit_all(recorder, entries)
    wait_until(lambda: recorder.written == len(entries), "every record is written")
    assert sorted(stored_ids(store)) == sorted(r.request_id for r, _ in entries)
    for record, payload in entries[::50]:
        assert store.get(record.request_id) == RequestDetail(record, payload, [])
    stats = recorder.stats()
    assert (stats.dropped, stats.store_errors, stats.spooled, stats.queue_depth) == (0, 0, 0, 0)
    assert stats.batches >= len(entries) / 200 and stats.last_error is None


def test_submit_is_cheap(store: Store, make_recorder: MakeRecorder) -> None:
    entries = batch(10_000)
    recorder = make_recorder(store)
    recorder.start()
    began = time.perf_counter()
    submit_all(recorder, entries)
    assert time.perf_counter() - began < 2.0  # about 1 µs each; loose for slow CI machines
    wait_until(lambda: recorder.written == 10_000, "every record is written")


def test_a_failing_store_spools_then_replays_in_order(store: Store, make_recorder: MakeRecorder,
                                                      tmp_path: Path) -> None:
    faulty = FaultyStore(store)
    faulty.failing.set()
    recorder = make_recorder(faulty, batch_size=100)
    recorder.start()
    submit_all(recorder, batch(1000))
    wait_until(lambda: recorder.spooled == 1000, "every record is spooled")
    assert stored_ids(store) == [] and recorder.store_errors >= 1 and recorder.written == 0
    assert recorder.last_error == "StoreError: injected outage"
    on_disk = sum(p.stat().st_size for p in (tmp_path / "spool").glob("spool*.jsonl"))
    assert recorder.spool_bytes == on_disk > 0
    faulty.failing.clear()
    wait_until(lambda: recorder.written == 1000, "the spool is replayed")
    assert sorted(faulty.order) == ids(1000)
    # In order; a record that failed alone may let the next one go first to tell the causes apart.
    assert sum(a > b for a, b in zip(faulty.order, faulty.order[1:], strict=False)) <= 1
    assert (recorder.spooled, recorder.spool_bytes, recorder.dropped, recorder.rejected) == (0, 0, 0, 0)
    assert list((tmp_path / "spool").glob("spool*.jsonl")) == []


def test_overflow_while_the_store_hangs_goes_to_the_spool(store: Store, make_recorder: MakeRecorder) -> None:
    faulty = FaultyStore(store)
    faulty.gate.clear()
    recorder = make_recorder(faulty, queue_size=100, batch_size=50)
    recorder.start()
    submit_all(recorder, batch(10))
    assert faulty.entered.wait(5)  # the writer hangs inside the store with those 10
    began = time.perf_counter()
    submit_all(recorder, batch(500, start=10))
    assert time.perf_counter() - began < 2.0
    assert (recorder.queue_depth, recorder.spooled, recorder.dropped) == (100, 400, 0)
    faulty.failing.set()  # the hung write fails at last
    faulty.gate.set()
    wait_until(lambda: recorder.store_errors > 0, "the store fails")
    faulty.failing.clear()
    wait_until(lambda: recorder.written == 510, "every record is written")
    assert sorted(stored_ids(store)) == ids(510)
    assert (recorder.spooled, recorder.queue_depth, recorder.dropped) == (0, 0, 0)


def test_close_with_the_store_down_leaves_a_spool_the_next_recorder_replays(
    store: Store, make_recorder: MakeRecorder, tmp_path: Path
) -> None:
    faulty = FaultyStore(store)
    faulty.failing.set()
    first = make_recorder(faulty, batch_size=64)
    first.start()
    submit_all(first, batch(300))
    first.close(timeout=2)
    assert first.spooled == 300 and first.dropped == 0
    lines = sum(len(p.read_bytes().splitlines()) for p in (tmp_path / "spool").glob("spool*.jsonl"))
    assert lines == 300
    second = make_recorder(store)
    assert second.spooled == 300
    second.start()
    wait_until(lambda: second.written == 300, "the spool of the first run is replayed")
    assert sorted(stored_ids(store)) == ids(300) and second.spooled == 0


def test_a_truncated_last_spool_line_is_skipped_and_counted(store: Store, make_recorder: MakeRecorder,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "spool" / "spool.jsonl"
    spool = Spool(path)
    spool.append(batch(10))
    spool.close()
    with open(path, "ab") as f:
        f.write(encode(*batch(1, start=10)[0])[:-30])  # the process died mid-write
    recorder = make_recorder(store)
    recorder.start()
    wait_until(lambda: recorder.spooled == 0, "the spool is replayed")
    assert sorted(stored_ids(store)) == ids(10)
    assert recorder.corrupt == 1 and recorder.written == 10 and recorder.dropped == 0


def test_a_record_the_store_refuses_is_set_aside_and_the_rest_written(
    store: Store, make_recorder: MakeRecorder, tmp_path: Path
) -> None:
    faulty = FaultyStore(store)
    faulty.refused = {"r00005"}
    recorder = make_recorder(faulty, retry_interval_s=0.01)
    recorder.start()
    submit_all(recorder, batch(20))
    wait_until(lambda: recorder.written == 19 and recorder.spooled == 0, "the rest is written")
    assert sorted(stored_ids(store)) == [i for i in ids(20) if i != "r00005"]
    assert recorder.rejected == 1 and recorder.dropped == 0
    rejected = (tmp_path / "spool" / "spool.rejected.jsonl").read_text()
    assert '"request_id":"r00005"' in rejected and rejected.count("\n") == 1


def test_refused_records_side_by_side_are_set_aside_and_every_other_one_written(
    store: Store, make_recorder: MakeRecorder, tmp_path: Path
) -> None:
    faulty = FaultyStore(store)
    faulty.refused = {"r00005", "r00006", "r00007", "r00150"}
    recorder = make_recorder(faulty, batch_size=100)
    recorder.start()
    submit_all(recorder, batch(300))
    wait_until(lambda: recorder.written + recorder.rejected == 300 and recorder.spooled == 0,
               "every record is written or set aside")
    assert sorted(stored_ids(store)) == [i for i in ids(300) if i not in faulty.refused]
    assert faulty.order == [i for i in ids(300) if i not in faulty.refused]  # in order
    assert (recorder.rejected, recorder.repaired, recorder.dropped) == (4, 0, 0)
    rejected = (tmp_path / "spool" / "spool.rejected.jsonl").read_text().splitlines()
    assert sorted(line.split('"request_id":"')[1][:6] for line in rejected) == sorted(faulty.refused)


def test_an_unnamed_refusal_of_records_side_by_side_stops_nothing(
    store: Store, make_recorder: MakeRecorder
) -> None:
    faulty = FaultyStore(store)
    faulty.unnamed = {"r00005", "r00006"}
    recorder = make_recorder(faulty, retry_interval_s=0.01)
    recorder.start()
    submit_all(recorder, batch(20))
    wait_until(lambda: recorder.written == 18 and recorder.spooled == 0, "the rest is written")
    assert sorted(stored_ids(store)) == [i for i in ids(20) if i not in faulty.unnamed]
    assert recorder.rejected == 2


def test_an_outage_sets_nothing_aside(store: Store, make_recorder: MakeRecorder) -> None:
    faulty = FaultyStore(store)
    faulty.failing.set()
    faulty.refused = {"r00003"}
    recorder = make_recorder(faulty, batch_size=10)
    recorder.start()
    submit_all(recorder, batch(50))
    wait_until(lambda: recorder.spooled == 50, "every record is spooled")
    time.sleep(0.2)  # retries against the outage
    assert (recorder.rejected, recorder.written) == (0, 0)
    faulty.failing.clear()
    wait_until(lambda: recorder.written == 49 and recorder.spooled == 0, "the spool is replayed")
    assert recorder.rejected == 1 and sorted(stored_ids(store)) == [i for i in ids(50) if i != "r00003"]


def odd_records(start: int) -> list[tuple[Record, Payload | None]]:
    """Records that no store holds as they are, as a builder without bounds made them."""
    return [
        (make_record(start, end_user="nul\x00user", model="m\x00", session_id="s\x00",
                     metadata={"k\x00": "v\x00"}, tags={"t": "\x00"}),
         Payload(f"r{start:05d}", "full", "prompt\x00", "\ud800")),
        (make_record(start + 1, end_user="u" * 9000, input_tokens=10**30, output_tokens=2**31),
         None),
        (make_record(start + 2, cached_tokens=-5, latency_s=math.nan, started_at=math.inf,
                     error_message="lone \udfff"), None),
    ]


def test_records_no_store_holds_are_written_cut_to_bounds_and_stop_nothing(
    store: Store, make_recorder: MakeRecorder
) -> None:
    entries = [*batch(10), *odd_records(10), *odd_records(13), *batch(10, start=16)]
    recorder = make_recorder(store, batch_size=8)
    recorder.start()
    submit_all(recorder, entries)
    wait_until(lambda: recorder.written == 26 and recorder.spooled == 0, "every record is written")
    assert sorted(stored_ids(store)) == ids(26)
    assert (recorder.rejected, recorder.dropped) == (0, 0)
    # On SQLite the NUL characters and the 9,000-character user fit as they are.
    assert 4 <= recorder.repaired <= 6
    got = store.get("r00011")
    assert got is not None and got.record.input_tokens == 2**31 - 1
    assert got.record.end_user in ("u" * 9000, "u" * 256)
    odd = store.get("r00012")
    assert odd is not None and "started_at" in odd.record.truncated
    assert odd.record.error_message == "lone \ufffd" and odd.record.cached_tokens == 0


def test_a_spool_of_records_no_store_holds_is_replayed_after_a_restart(
    store: Store, make_recorder: MakeRecorder, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool" / "spool.jsonl")
    spool.append([*batch(5), *odd_records(5), *odd_records(8), *batch(5, start=11)])
    spool.peek(1)  # a replay had begun: the entries are in spool.replaying.jsonl
    spool.close()
    assert (tmp_path / "spool" / "spool.replaying.jsonl").exists()
    recorder = make_recorder(store)
    recorder.start()
    wait_until(lambda: recorder.written == 16 and recorder.spooled == 0, "the spool is replayed")
    assert sorted(stored_ids(store)) == ids(16) and recorder.rejected == 0
    assert list((tmp_path / "spool").glob("spool*.jsonl")) == []


def test_submit_never_raises_and_counts_what_it_cannot_keep(store: Store,
                                                            make_recorder: MakeRecorder) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    recorder = make_recorder(store, queue_size=0)  # everything overflows to the spool
    recorder.submit(make_record(1, metadata=loop), None)  # JSON cannot hold it
    recorder.submit(make_record(2), None)
    assert (recorder.dropped, recorder.spooled) == (1, 1)
    recorder.close()
    recorder.submit(make_record(3), None)  # after close: to the spool, for the next run
    assert (recorder.dropped, recorder.spooled) == (1, 2)


@pytest.mark.slow
def test_every_record_survives_a_sqlite_database_locked_by_another_process(
    tmp_path: Path, make_recorder: MakeRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite waits 10 s for a lock before failing; 50 ms makes the lock fail writes for real.
    monkeypatch.setattr(sql_module, "_BUSY_TIMEOUT_MS", 50)
    db = tmp_path / "data" / "warden.db"
    store = open_store(f"sqlite:///{db}")
    try:
        recorder = make_recorder(store, queue_size=1000, batch_size=200)
        recorder.start()
        entries = batch(6000)
        submit_all(recorder, entries[:500])
        wait_until(lambda: recorder.written == 500, "the first records are written")
        locker = sqlite3.connect(db, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            for start in range(500, 5500, 500):  # about a second of load against the lock
                submit_all(recorder, entries[start:start + 500])
                time.sleep(0.1)
            assert recorder.written == 500 and recorder.store_errors > 0 and recorder.spooled > 0
            assert "database is locked" in (recorder.last_error or "")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        submit_all(recorder, entries[5500:])
        wait_until(lambda: recorder.written == 6000, "every record is written", timeout=15)
        assert sorted(stored_ids(store)) == ids(6000)
        assert (recorder.dropped, recorder.spooled, recorder.rejected) == (0, 0, 0)
        recorder.close()
    finally:
        store.close()
