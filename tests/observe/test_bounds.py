"""Whatever a record holds, every store takes it once it is cut to bounds, and no record, however
odd, stops the ones behind it: property tests with hypothesis, through ``bound_record`` and
through the recorder to SQLite and PostgreSQL (see ``store_url`` in conftest.py)."""

from __future__ import annotations

import itertools
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.store.factory import make_record
from warden.observe.bounds import (
    MAX_DEPTH,
    MAX_INT,
    MAX_ITEMS,
    MAX_METADATA_CHARS,
    MAX_NAME,
    MAX_TAGS,
    MAX_TEXT,
    MAX_TIME,
    bound_record,
    clean_text,
)
from warden.observe.record import AttemptRecord, Finding, Payload, Record
from warden.observe.recorder import Recorder
from warden.store import Store, open_store

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])

# Any code point, lone surrogates and NUL included, and text past every bound.
texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfffy", "\U0001f600", "é" * 300]),
    st.integers(300, 12_000).map(lambda n: "u" * n),
)
numbers = st.one_of(
    st.integers(-2**70, 2**70), st.floats(), st.sampled_from([10**30, 2**31, -1, 1e30, -math.inf]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(texts | st.integers(), inner, max_size=4),
                         max_leaves=16)


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "\x00"}
    for _ in range(levels):
        value = {"d": value}
    return value


metadata = st.one_of(
    st.dictionaries(texts, json_like, max_size=6),
    st.integers(10, 200).map(_deep),
    st.integers(300, 3000).map(lambda n: {f"k{i}": "v" * 50 for i in range(n)}),
    st.just({"set": {1, 2}, "bytes": b"\x00\xff", "obj": object}),
)
attempts = st.builds(AttemptRecord, model=texts, deployment=texts, provider=texts,
                     started_s=numbers, latency_s=numbers, status=numbers,
                     error_type=st.none() | texts, error=st.none() | texts)
findings = st.builds(Finding, scanner=texts, type=texts, action=texts, score=numbers,
                     where=st.sampled_from(["input", "output", "elsewhere"]),
                     start=st.none() | numbers, end=st.none() | numbers, part=st.none() | numbers)
odd_fields = st.fixed_dictionaries({}, optional={
    "trace_id": texts, "started_at": numbers, "ended_at": numbers, "model": texts,
    "http_status": numbers, "latency_s": numbers, "ttft_s": st.none() | numbers,
    "deployment": texts, "provider": texts, "upstream_model": texts, "model_version": texts,
    "key_id": texts, "team": texts, "end_user": texts, "session_id": texts,
    "error_type": texts, "error_message": texts, "input_tokens": numbers,
    "output_tokens": numbers, "cached_tokens": numbers, "output_tokens_per_s": numbers,
    "cost_usd": st.none() | numbers, "region": texts, "client_request_id": texts,
    "attempts": st.lists(attempts, max_size=40), "findings": st.lists(findings, max_size=5),
    "tags": st.dictionaries(texts, texts, max_size=40), "metadata": metadata,
    "status": st.sampled_from(["ok", "error", "blocked", "odd\x00"]),
    "cache": st.sampled_from(["hit", "miss", "bypass", "\ud800"]),
})
payload_texts = st.none() | texts


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _within_bounds(r: Record) -> None:
    for name in ("request_id", "client_request_id", "trace_id", "api", "model", "deployment",
                 "provider", "upstream_model", "model_version", "key_id", "team", "end_user",
                 "session_id", "error_type", "region"):
        value = getattr(r, name)
        assert value is None or (isinstance(value, str) and len(value) <= MAX_NAME
                                 and clean_text(value) == value), name
    assert r.error_message is None or len(r.error_message) <= MAX_TEXT
    for name in ("input_tokens", "output_tokens", "cached_tokens", "http_status"):
        assert type(getattr(r, name)) is int and 0 <= getattr(r, name) <= MAX_INT, name
    for name in ("started_at", "ended_at", "latency_s", "ttft_s", "output_tokens_per_s", "cost_usd"):
        value = getattr(r, name)
        assert value is None or (type(value) is float and 0 <= value <= MAX_TIME), name
    assert len(r.tags) <= MAX_TAGS and len(r.attempts) <= 32
    orjson.dumps(r.metadata)  # JSON as it is: no NaN, no odd types, no integer past 64 bits
    assert _depth(r.metadata) <= MAX_DEPTH + 1
    text = [s for s in _strings(r.metadata)]
    assert sum(len(s) for s in text) <= MAX_METADATA_CHARS + 64
    assert all(clean_text(s) == s for s in text)
    assert all(len(v) <= MAX_ITEMS for v in _containers(r.metadata))
    for a in r.attempts:
        assert all(clean_text(s) == s for s in (a.model, a.deployment, a.provider))
        assert math.isfinite(a.started_s) and math.isfinite(a.latency_s)
    for f in r.findings:
        assert math.isfinite(f.score) and f.where in ("input", "output")


def _containers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict | list):
        yield value
        for item in value.values() if isinstance(value, dict) else value:
            yield from _containers(item)


_ids = itertools.count()


@PROPERTY
@given(odd_fields)
def test_a_bounded_record_is_within_every_bound_and_bounding_it_again_changes_nothing(
        fields: dict[str, Any]) -> None:
    record = make_record(next(_ids), **fields)
    bounded = bound_record(record)
    _within_bounds(bounded)
    assert bound_record(bounded) is bounded
    if bounded is not record:
        assert bounded.truncated and set(bounded.truncated) <= {*Record.__dataclass_fields__}


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


@PROPERTY
@given(st.lists(st.tuples(odd_fields, st.booleans(), payload_texts, payload_texts),
                min_size=1, max_size=4),
       st.integers(1, 6))
def test_odd_records_through_the_recorder_leave_every_record_stored_and_nothing_spooled(
        store: Store, odd: list[tuple[dict[str, Any], bool, str | None, str | None]],
        batch_size: int) -> None:
    entries: list[tuple[Record, Payload | None]] = []
    built_ids: set[str] = set()
    for fields, built, prompt, completion in odd:
        n = next(_ids)
        entries.append((make_record(n), None))  # a well-formed one before every odd one
        record = make_record(n + 100_000, **fields)
        if built:  # as record_of builds them; the others come as a plugin might make them
            record.request_id = f"p{n}\x00"  # odd even in its id
            record = bound_record(record)
            built_ids.add(record.request_id)
        entries.append((record, Payload(record.request_id, "full", prompt, completion)))
    entries.append((make_record(next(_ids)), None))
    with tempfile.TemporaryDirectory() as spool:
        recorder = Recorder(store, Path(spool) / "spool.jsonl", batch_size=batch_size,
                            flush_interval_s=0.005, retry_interval_s=0.01)
        recorder.start()
        try:
            for record, payload in entries:
                recorder.submit(record, payload)
            _wait(lambda: recorder.written == len(entries) and recorder.spooled == 0,
                  "every record is written")
        finally:
            recorder.close(timeout=5)
        assert (recorder.rejected, recorder.dropped, recorder.spooled) == (0, 0, 0)
        assert not list(Path(spool).glob("spool*.jsonl"))
    for record, payload in entries:
        # Stored as it is where the store took it so (SQLite holds NUL), else cut to bounds.
        got = store.get(record.request_id)
        assert got is not None
        if record.request_id in built_ids:
            _within_bounds(got.record)
        if payload is not None and got.payload is not None and payload.prompt is not None:
            assert got.payload.prompt == clean_text(payload.prompt)
