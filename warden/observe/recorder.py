"""The recorder: takes each request's Record off the hot path and writes it to the store in batches.

Contract::

    recorder = Recorder(store, spool_path, queue_size=10000, batch_size=500,
                        flush_interval_s=0.2, retry_interval_s=1.0)
    recorder.start()                    # the writer thread; replays a spool left by a previous run
    recorder.submit(record, payload)    # O(1); never blocks, never raises; from any thread or the loop
    recorder.close(timeout)             # writes what the store takes in time, spools the rest

- ``submit`` appends to an in-memory queue of ``queue_size`` entries. When the queue is full the
  entry is appended to the spool file instead (a buffered write, no fsync: still nothing lost);
  only when that fails too is the record dropped, counted in ``dropped`` and logged. Entries
  submitted after ``close`` go to the spool the same way.
- The writer thread takes up to ``batch_size`` entries at least every ``flush_interval_s`` and
  calls ``store.write``. When the store raises (StoreError or any other error), the batch goes to
  the spool (``warden.observe.spool``: JSON lines, fsync'd per batch) and the store is tried again
  every ``retry_interval_s``. While the spool holds entries, new batches are appended behind them,
  so records reach the store in the order they were submitted (overflowing ones excepted). When
  the store works again the spool is replayed in order, in batches; the store's idempotent
  ``write`` makes a crash mid-replay harmless. A corrupt line (a crash mid-write) is skipped and
  counted in ``corrupt``.
- An outage and a refusal are told apart. A store that cannot be reached (StoreError, or any
  error but those below) gets the batch spooled, as above; nothing is set aside. A store that
  refuses the data (RecordsRefused, or a ValueError, TypeError, OverflowError, RecursionError on
  the way) has the batch split in halves, and the halves written, down to the records it
  refuses alone, so that every record behind a bad one is written at once. A record refused
  alone is written once more cut to the bounds every store takes (``warden.observe.bounds``;
  counted in ``repaired``); when the store refuses that too, it is moved to the spool's rejected
  file (``spool.rejected.jsonl``) and counted in ``rejected``. A spool left by an earlier run is
  replayed the same way, so that its bad records cannot stall the recorder across restarts.
- A replayed batch that fails otherwise is retried in halves, down to a single record. When a
  record fails alone, the records behind it are tried one by one (1, then up to 64 as the
  failures repeat); when one of them is written, the store works, and each record before it
  that fails once more is refused without the store saying so: it is set aside as above.
- Observable state, for metrics: ``queue_depth``, ``spooled``, ``spool_bytes``, ``written``,
  ``dropped``, ``store_errors``, ``batches``, ``corrupt``, ``rejected``, ``repaired``,
  ``last_error``, and a ``stats()`` snapshot.

Plain threads, no asyncio, no global state. The recorder does not own the store: the caller
closes it after ``close``. The writer is a daemon thread: if a store call hangs past ``close``'s
timeout, ``close`` spools the queue itself, but the batch inside that call is lost when the
process exits before the call returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from warden.observe.bounds import bound_payload, bound_record
from warden.observe.record import Payload, Record
from warden.observe.spool import Entry, Spool
from warden.store.base import RecordsRefused, Store

log = logging.getLogger("warden.recorder")
_DROP_LOG_EVERY_S = 10.0
Outcome = Literal["written", "refused", "down"]
# What a store raises for data it cannot take: a refusal by the database, or a value the code
# on the way cannot handle. Anything else is an outage (the same batch may be written later).
_REFUSALS = (RecordsRefused, ValueError, TypeError, OverflowError, RecursionError)
_MAX_PROBE = 64


@dataclass(slots=True, frozen=True)
class RecorderStats:
    """A snapshot of the recorder's state (see the module docstring)."""

    queue_depth: int
    spooled: int
    spool_bytes: int
    written: int
    dropped: int
    store_errors: int
    batches: int
    corrupt: int
    rejected: int
    repaired: int
    last_error: str | None


class Recorder:
    """Writes submitted records to ``store`` from a thread of its own, through ``spool_path``
    when the store fails."""

    def __init__(self, store: Store, spool_path: Path, *, queue_size: int = 10000,
                 batch_size: int = 500, flush_interval_s: float = 0.2,
                 retry_interval_s: float = 1.0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        self._store = store
        self._spool = Spool(spool_path)
        self._queue: deque[Entry] = deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_interval_s = retry_interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._deadline = 0.0  # when closing: the writer stops writing to the store at this time
        self._retry_at = 0.0  # monotonic time before which the store is not tried again
        self._store_down = False
        self._replay_n = batch_size  # shrinks while a replayed batch fails
        self._probe_n = 1  # how many records behind one that fails alone are tried, at most
        self._drop_lock = threading.Lock()
        self._drop_logged_at = -_DROP_LOG_EVERY_S
        self.written = 0
        self.dropped = 0
        self.store_errors = 0
        self.batches = 0
        self.rejected = 0
        self.repaired = 0
        self.last_error: str | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def spooled(self) -> int:
        return self._spool.records

    @property
    def spool_bytes(self) -> int:
        return self._spool.bytes

    @property
    def corrupt(self) -> int:
        return self._spool.corrupt

    def stats(self) -> RecorderStats:
        return RecorderStats(
            queue_depth=self.queue_depth, spooled=self.spooled, spool_bytes=self.spool_bytes,
            written=self.written, dropped=self.dropped, store_errors=self.store_errors,
            batches=self.batches, corrupt=self.corrupt, rejected=self.rejected,
            repaired=self.repaired, last_error=self.last_error,
        )

    # -- the caller's side --------------------------------------------------------------------

    def submit(self, record: Record, payload: Payload | None) -> None:
        """Take a record (and its payload) to be written; O(1), never blocks, never raises."""
        try:
            queue = self._queue
            if len(queue) < self._queue_size and not self._closed:
                queue.append((record, payload))
                if len(queue) == self._batch_size:
                    self._wake.set()
                return
            self._spill([(record, payload)])
        except Exception as exc:  # noqa: BLE001 -- a record must never fail its request
            self._drop(1, exc)

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            raise RuntimeError("the recorder was started already")
        self._thread = threading.Thread(target=self._run, name="warden-recorder", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer: what the store takes within ``timeout`` seconds is written, the rest
        is spooled for the next run."""
        self._closed = True
        self._deadline = time.monotonic() + timeout * 0.8  # the rest of the time is for spooling
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the recorder's writer is stuck in a store call after %.1f s; "
                          "spooling the queue", timeout)
                self._spill(self._take(len(self._queue)))
                self._spool.sync()
                return
        self._spill(self._take(len(self._queue)))
        self._spool.close()

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            if not self._guarded_step():
                self._wake.wait(self._flush_interval_s)
        # Closing: write while the store works and time is left; the rest goes to the spool.
        while ((self._queue or self._spool.pending()) and self._store_up()
               and time.monotonic() < self._deadline):
            if not self._guarded_step():
                break
        self._spill(self._take(len(self._queue)))
        self._spool.sync()

    def _guarded_step(self) -> bool:
        try:
            return self._step()
        except Exception as exc:  # the writer must outlive any one failure (logged, below)
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("the recorder's writer failed; retrying in %g s", self._retry_interval_s)
            self._stop.wait(self._retry_interval_s)
            return False

    def _step(self) -> bool:
        """One round of work; False when there is nothing to do until the next wake-up."""
        batch = self._take(self._batch_size)
        if batch:
            done = 0 if self._spool.pending() or not self._store_up() else self._deliver(batch)
            self._spill(batch[done:])  # behind what is spooled already, to keep the order
        self._spool.sync()
        if self._spool.pending() and self._store_up():
            return self._replay()
        return len(self._queue) >= self._batch_size or (self._stop.is_set() and bool(self._queue))

    def _store_up(self) -> bool:
        return time.monotonic() >= self._retry_at

    def _take(self, n: int) -> list[Entry]:
        batch: list[Entry] = []
        try:
            for _ in range(n):
                batch.append(self._queue.popleft())
        except IndexError:
            pass  # the queue ran empty (another thread took the last entry): a short batch
        return batch

    def _write(self, batch: list[Entry]) -> Outcome:
        """Write a batch to the store: "written"; "refused" when the database refuses its data;
        "down" (and the store rests) when it fails otherwise."""
        try:
            self._store.write([r for r, _ in batch], [p for _, p in batch if p is not None])
        except Exception as exc:  # noqa: BLE001 -- any database error: refused, or spool and retry
            self.store_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, _REFUSALS):
                return "refused"
            self._retry_at = time.monotonic() + self._retry_interval_s
            if not self._store_down:
                self._store_down = True
                log.warning("the store failed (%s); spooling records to %s and retrying every "
                            "%g s", self.last_error, self._spool.path, self._retry_interval_s)
            return "down"
        self.written += len(batch)
        self.batches += 1
        self._retry_at = 0.0
        if self._store_down:
            self._store_down = False
            log.info("the store works again; replaying %d spooled records", self._spool.records)
        return "written"

    def _deliver(self, entries: list[Entry]) -> int:
        """Write ``entries``, setting aside those the store refuses; how many of them (from the
        first) are done with, written or set aside. Fewer than all when the store went down."""
        outcome = self._write(entries)
        if outcome != "refused":
            return len(entries) if outcome == "written" else 0
        if len(entries) == 1:
            return 1 if self._settle(entries[0]) else 0
        # Halves, until the refused records stand alone: one in a batch of 500 costs 18 writes.
        half = len(entries) // 2
        done = self._deliver(entries[:half])
        return done if done < half else half + self._deliver(entries[half:])

    def _settle(self, entry: Entry) -> bool:
        """A record the store refused alone: write it within the bounds every store takes, or
        set it aside in the rejected file. False when the store went down meanwhile."""
        record, payload = entry
        bounded = (bound_record(record), None if payload is None else bound_payload(payload))
        if bounded[0] is not record or bounded[1] is not payload:
            outcome = self._write([bounded])
            if outcome == "written":
                self.repaired += 1
                log.warning("the store refused record %s as it was; wrote it cut to bounds (%s)",
                            record.request_id, ", ".join(bounded[0].truncated))
                return True
            if outcome == "down":
                return False
        self._reject(entry)
        return True

    def _reject(self, entry: Entry) -> None:
        self._spool.reject(entry)
        self.rejected += 1
        self._retry_at, self._store_down = 0.0, False
        log.error("the store refuses record %s (%s); moved it to %s", entry[0].request_id,
                  self.last_error, self._spool.rejected_path)

    def _replay(self) -> bool:
        """Write the oldest spooled entries to the store; False when the store failed."""
        chunk = self._spool.peek(self._replay_n)
        if not chunk.entries:  # only corrupt lines, or the end of the replaying file
            self._spool.consume(chunk)
            return True
        done = self._deliver(chunk.entries)
        if done == len(chunk.entries):
            self._spool.consume(chunk)
            self._replay_n = min(self._batch_size, self._replay_n * 2)
            return True
        if done:  # the store went down behind them: those are written (or set aside) already
            self._spool.consume(self._spool.peek(done))
            return False
        if len(chunk.entries) > 1:
            self._replay_n = max(1, len(chunk.entries) // 2)
            return False
        # One record fails alone, and not with a refusal: an outage, or a refusal the store does
        # not name? When a record behind it is written, the store works: each record before that
        # one is tried once more, then taken for refused.
        ahead = self._spool.peek(self._probe_n + 1)
        written = next((n for n, entry in enumerate(ahead.entries[1:], start=1)
                        if self._write([entry]) == "written"), None)
        if written is None:
            self._probe_n = min(_MAX_PROBE, self._probe_n * 2)  # a longer run of them, next time
            return False
        self._probe_n = 1
        for done, entry in enumerate(ahead.entries[:written]):
            if self._write([entry]) != "written" and not self._settle(entry):
                if done:
                    self._spool.consume(self._spool.peek(done))
                return False
        self._spool.consume(self._spool.peek(written + 1))
        return True

    # -- both sides ---------------------------------------------------------------------------

    def _spill(self, entries: list[Entry]) -> None:
        """Append entries to the spool; count and log those that cannot be written there."""
        if not entries:
            return
        try:
            failed = self._spool.append(entries)
        except Exception as exc:  # noqa: BLE001 -- counted and logged by _drop
            self._drop(len(entries), exc)
            return
        if failed:
            self._drop(failed, None)

    def _drop(self, n: int, exc: BaseException | None) -> None:
        with self._drop_lock:
            self.dropped += n
            now = time.monotonic()
            if now - self._drop_logged_at < _DROP_LOG_EVERY_S:
                return
            self._drop_logged_at = now
            total = self.dropped
        log.error("dropped %d records (%d in all): neither the store nor the spool %s took them%s",
                  n, total, self._spool.path, "" if exc is None else f" ({exc})")
