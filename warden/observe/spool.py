"""The spool: where the recorder keeps records the store could not take, until it can.

An append-only JSON-lines file, one ``{"r": record, "p": payload | null}`` object per line, read
back oldest first. Records and payloads round-trip losslessly, nested attempts and findings
included (floats keep every bit; text is written as ASCII escapes, so any string survives).

Files, beside ``path`` (``spool.jsonl``):

    spool.jsonl             new entries are appended here (fsync'd per batch by ``sync``)
    spool.replaying.jsonl   the oldest entries, being replayed; ``spool.jsonl`` is renamed to it
                            (atomically) when a replay begins, and deleted when it ends
    spool.rejected.jsonl    entries the store refused alone while it took others: kept, not replayed

Replay is ``peek`` (read without consuming), write to the store, then ``consume``. A crash in
between replays the same entries again on the next start, which the store's idempotent ``write``
makes harmless. A line that cannot be decoded (a crash mid-write leaves a truncated last line) is
skipped, logged and counted in ``corrupt``. The spool is thread-safe for ``append``; the other
methods belong to one thread (the recorder's writer).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from warden.observe.record import AttemptRecord, Finding, Payload, Record

Entry = tuple[Record, Payload | None]

log = logging.getLogger("warden.recorder")
_DECODE_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


def encode(record: Record, payload: Payload | None) -> bytes:
    """One spool line. Raises ValueError or TypeError when the record cannot be written as JSON
    (a metadata value that refers to itself); other non-JSON values are kept as their text."""
    values: dict[str, Any] = {name: getattr(record, name) for name in _RECORD_FIELDS}
    values["attempts"] = [{n: getattr(a, n) for n in _ATTEMPT_FIELDS} for a in record.attempts]
    values["findings"] = [{n: getattr(f, n) for n in _FINDING_FIELDS} for f in record.findings]
    body = None if payload is None else {n: getattr(payload, n) for n in _PAYLOAD_FIELDS}
    return (json.dumps({"r": values, "p": body}, separators=(",", ":"), default=str) + "\n").encode()


def decode(line: bytes) -> Entry:
    """The entry of one spool line; raises one of ``_DECODE_ERRORS`` when it is not one."""
    obj = json.loads(line)
    values = dict(obj["r"])
    values["attempts"] = [AttemptRecord(**a) for a in values["attempts"]]
    values["findings"] = [Finding(**f) for f in values["findings"]]
    body = obj["p"]
    return Record(**values), None if body is None else Payload(**body)


_RECORD_FIELDS = tuple(n for n in Record.__dataclass_fields__ if n not in ("attempts", "findings"))
_ATTEMPT_FIELDS = tuple(AttemptRecord.__dataclass_fields__)
_FINDING_FIELDS = tuple(Finding.__dataclass_fields__)
_PAYLOAD_FIELDS = tuple(Payload.__dataclass_fields__)


@dataclass(slots=True)
class Chunk:
    """Entries read by ``peek``: the decoded ones, how many lines were skipped, and where the
    next read starts."""

    entries: list[Entry] = field(default_factory=list)
    skipped: int = 0
    end: int = 0


class Spool:
    """The spool files at ``path``; counts what they hold on opening."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replay_path = path.with_name(f"{path.stem}.replaying{path.suffix}")
        self.rejected_path = path.with_name(f"{path.stem}.rejected{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards the live file, its size and the counts
        self._file: BinaryIO | None = None
        self._unsynced = False
        self._reader: BinaryIO | None = None
        self._offset = 0  # where the next peek reads in the replaying file
        self.records = 0  # lines not yet replayed (a truncated one included, until it is skipped)
        self.bytes = 0  # the size of those lines
        self.corrupt = 0  # lines skipped because they could not be decoded
        self._live_size = self._scan(path)
        # A line cut short by a crash must not swallow the next append.
        self._needs_newline = self._live_size > 0 and self._last_byte(path) != b"\n"
        if self.replay_path.exists():
            self._scan(self.replay_path)
            self._reader = open(self.replay_path, "rb")  # noqa: SIM115 -- kept open across peeks
        if self.records:
            log.info("spool %s holds %d records from a previous run", path, self.records)

    def _scan(self, path: Path) -> int:
        try:
            with open(path, "rb") as f:
                self.records += sum(1 for line in f if line.strip())
                size = f.tell()
        except FileNotFoundError:
            return 0
        self.bytes += size
        return size

    @staticmethod
    def _last_byte(path: Path) -> bytes:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1)

    def pending(self) -> bool:
        """Whether entries wait to be replayed."""
        return self._reader is not None or self._live_size > 0

    def append(self, entries: list[Entry]) -> int:
        """Append entries (flushed to the OS; ``sync`` makes them durable). Returns how many
        could not be encoded (they are not written). Raises OSError when the file cannot be
        written; then nothing of this call is in it."""
        lines: list[bytes] = []
        for record, payload in entries:
            try:
                lines.append(encode(record, payload))
            except (ValueError, TypeError, RecursionError) as exc:
                log.error("cannot spool record %s: %s", record.request_id, exc)
        data = b"".join(lines)
        with self._lock:
            if self._needs_newline:
                data = b"\n" + data
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115 -- kept open across appends
                _sync_folder(self.path.parent)  # the new file's name must survive a power loss
            start = self._file.seek(0, os.SEEK_END)
            try:
                self._file.write(data)
                self._file.flush()
            except OSError:
                self._needs_newline = True
                try:
                    self._file.truncate(start)
                except OSError as exc:  # the next append starts on a fresh line regardless
                    log.error("cannot cut a partial write from spool %s: %s", self.path, exc)
                raise
            self._needs_newline = False
            self._live_size = start + len(data)
            self._unsynced = True
            self.records += len(lines)
            self.bytes += len(data)
        return len(entries) - len(lines)

    def sync(self) -> None:
        """Make the appended entries durable (fsync)."""
        with self._lock:
            if self._file is None or not self._unsynced:
                return
            self._unsynced = False
            fd = self._file.fileno()
        os.fsync(fd)  # outside the lock: an append never waits for the disk; only this thread closes

    def peek(self, limit: int) -> Chunk:
        """Up to ``limit`` of the oldest entries, not yet consumed."""
        if self._reader is None:
            with self._lock:
                if self._live_size == 0:
                    return Chunk()
                self._close_live()
                os.replace(self.path, self.replay_path)
                self._live_size = 0
                self._needs_newline = False
            self._reader = open(self.replay_path, "rb")  # noqa: SIM115 -- kept open across peeks
            self._offset = 0
        chunk = Chunk()
        self._reader.seek(self._offset)
        while len(chunk.entries) < limit:
            line = self._reader.readline()
            if not line:
                break
            if not line.strip():
                continue
            try:
                chunk.entries.append(decode(line))
            except _DECODE_ERRORS as exc:
                chunk.skipped += 1
                log.warning("skipped a corrupt line at byte %d of spool %s (%s: %.100s)",
                            self._reader.tell() - len(line), self.replay_path, type(exc).__name__, exc)
        chunk.end = self._reader.tell()
        return chunk

    def consume(self, chunk: Chunk) -> None:
        """Drop the entries of ``chunk`` (replayed); the replaying file goes once read through."""
        with self._lock:
            self.records = max(0, self.records - len(chunk.entries) - chunk.skipped)
            self.bytes = max(0, self.bytes - (chunk.end - self._offset))
            self.corrupt += chunk.skipped
        self._offset = chunk.end
        if self._reader is None:
            return
        self._reader.seek(chunk.end)
        if self._reader.read(1) == b"":
            self._reader.close()
            self._reader = None
            os.remove(self.replay_path)

    def reject(self, entry: Entry) -> None:
        """Keep an entry the store refuses in the rejected file, for a person to look at."""
        with open(self.rejected_path, "ab") as f:
            f.write(encode(*entry))
            f.flush()
            os.fsync(f.fileno())

    def _close_live(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._unsynced:
                os.fsync(self._file.fileno())
                self._unsynced = False
            self._file.close()
            self._file = None

    def close(self) -> None:
        """Sync and close the files (the spool may be opened again later)."""
        with self._lock:
            self._close_live()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _sync_folder(folder: Path) -> None:
    if os.name != "posix":  # only POSIX can open a folder to fsync it
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
