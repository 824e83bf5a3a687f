"""The spool keeps records losslessly on disk, reads them back in order, and survives a crash
mid-write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store.factory import full_record, make_record
from warden.observe.record import Payload
from warden.observe.spool import Entry, Spool, decode, encode

OpenSpool = Callable[[], Spool]


@pytest.fixture
def open_spool(tmp_path: Path) -> Iterator[OpenSpool]:
    """Opens the spool at tmp_path/spool.jsonl; every one opened is closed after the test."""
    opened: list[Spool] = []

    def opener() -> Spool:
        opened.append(Spool(tmp_path / "spool.jsonl"))
        return opened[-1]

    yield opener
    for spool in opened:
        spool.close()


def entries(start: int, n: int) -> list[Entry]:
    return [(make_record(i), Payload(f"r{i:05d}", "full", f"prompt {i}", None) if i % 2 else None)
            for i in range(start, start + n)]


def read_all(spool: Spool) -> tuple[list[Entry], int]:
    got: list[Entry] = []
    skipped = 0
    while spool.pending():
        chunk = spool.peek(3)
        got += chunk.entries
        skipped += chunk.skipped
        spool.consume(chunk)
    return got, skipped


def test_a_line_round_trips_every_field() -> None:
    record, payload = full_record()
    record.latency_s = 0.1 + 0.2  # not a short decimal: every bit must survive
    record.error_message = "lone surrogate \ud800, newline\n, nul \x00, ünïcode ✓"
    payload.completion = "line one\nline two \U0001f600"
    line = encode(record, payload)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == (record, payload)
    assert decode(encode(record, None)) == (record, None)


def test_entries_come_back_in_order_and_are_counted(open_spool: OpenSpool, tmp_path: Path) -> None:
    spool = open_spool()
    assert not spool.pending() and spool.records == 0
    assert spool.append(entries(0, 5)) == 0
    spool.sync()
    assert spool.records == 5 and spool.bytes == (tmp_path / "spool.jsonl").stat().st_size
    first = spool.peek(2)
    spool.consume(first)
    spool.append(entries(5, 4))  # appended while a replay runs: read after the replaying file
    rest, skipped = read_all(spool)
    assert first.entries + rest == entries(0, 9)
    assert skipped == 0 and spool.records == 0 and spool.bytes == 0
    assert not (tmp_path / "spool.replaying.jsonl").exists()


def test_a_peek_without_consume_reads_the_same_entries_again(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.append(entries(0, 4))
    assert spool.peek(2).entries == spool.peek(2).entries == entries(0, 2)
    assert spool.peek(10).entries == entries(0, 4)


def test_a_reopened_spool_counts_and_replays_what_it_holds(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.append(entries(0, 6))
    spool.consume(spool.peek(2))  # a crash mid-replay leaves the replaying file behind
    spool.append(entries(6, 3))
    spool.close()
    again = open_spool()
    assert again.records == 6 + 3  # the replaying file is read again from its start
    got, _ = read_all(again)
    assert got == entries(0, 9)


def test_a_truncated_last_line_is_skipped_and_counted_and_later_appends_survive(
    open_spool: OpenSpool, tmp_path: Path
) -> None:
    path = tmp_path / "spool.jsonl"
    spool = open_spool()
    spool.append(entries(0, 3))
    spool.close()
    with open(path, "ab") as f:
        f.write(encode(*entries(3, 1)[0])[:40])  # a crash mid-write
    again = open_spool()
    assert again.records == 4
    again.append(entries(4, 2))
    got, skipped = read_all(again)
    assert got == entries(0, 3) + entries(4, 2)
    assert skipped == 1 and again.corrupt == 1 and again.records == 0


def test_a_corrupt_line_in_the_middle_is_skipped(open_spool: OpenSpool, tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    lines = [encode(*e) for e in entries(0, 3)]
    path.write_bytes(lines[0] + b'{"r": {"request_id": 7}, "p": null}\n' + b"\xff\xfe\n" + lines[1]
                     + b"\n" + lines[2])
    spool = open_spool()
    assert spool.records == 5
    got, skipped = read_all(spool)
    assert got == entries(0, 3) and skipped == 2 and spool.corrupt == 2


def test_a_record_json_cannot_hold_is_refused_alone(open_spool: OpenSpool) -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    spool = open_spool()
    assert spool.append([*entries(0, 1), (make_record(1, metadata=loop), None), *entries(2, 1)]) == 1
    got, _ = read_all(spool)
    assert [r.request_id for r, _ in got] == ["r00000", "r00002"]


def test_rejected_entries_are_kept_apart(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.reject(entries(1, 1)[0])
    assert [decode(line) for line in spool.rejected_path.read_bytes().splitlines()] == entries(1, 1)
    assert not spool.pending()
