"""Records for the store tests."""

from __future__ import annotations

from typing import Any

from warden.observe.record import AttemptRecord, Finding, Payload, Record
from warden.store.rows import REQUEST_COLUMNS, record_values

BASE = 1_700_000_040.0  # a multiple of 60: the buckets of the stats tests start on it


def make_record(i: int, **changes: Any) -> Record:
    """A plain successful record, ``request_id`` ``r0000i``, started ``i`` seconds after BASE."""
    values: dict[str, Any] = {
        "request_id": f"r{i:05d}",
        "trace_id": f"{i:032x}",
        "started_at": BASE + i,
        "ended_at": BASE + i + 0.5,
        "api": "chat",
        "model": "gpt-a",
        "status": "ok",
        "http_status": 200,
        "latency_s": 0.5,
    }
    values.update(changes)
    return Record(**values)


def full_record() -> tuple[Record, Payload]:
    """A record with every field set to something other than its default, and its payload."""
    record = Record(
        request_id="req-full", trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        started_at=1_700_000_123.456789, ended_at=1_700_000_125.000001, api="completion",
        model="gpt-public", status="error", http_status=502, latency_s=1.543212, ttft_s=0.123456,
        stream=True, deployment="dep-1", provider="openai", upstream_model="gpt-4o-2024",
        model_version="2024-08-06", key_id="key-7", team="search", end_user="user-42",
        session_id="sess-9", error_type="upstream_error", error_message="bad gateway: eof",
        input_tokens=120, output_tokens=45, cached_tokens=64, output_tokens_per_s=37.5,
        cost_usd=0.00123, cache="miss", region="eu-west-1",
        attempts=[
            AttemptRecord(model="gpt-public", deployment="dep-1", provider="openai", started_s=0.0,
                          latency_s=0.7, status=503, error_type="upstream_error", error="overloaded"),
            AttemptRecord(model="gpt-public", deployment="dep-2", provider="anthropic",
                          started_s=0.8, latency_s=0.74, status=0),
        ],
        findings=[Finding(scanner="pii", type="email", action="redact", score=0.98, where="input",
                          start=3, end=20)],
        tags={"env": "prod", "feature": "search", "ünïcode": "✓"},
        metadata={"n": 1, "x": 1.5, "flag": True, "none": None, "list": [1, "a"],
                  "nested": {"k": "v"}},
        client_request_id="client-7", truncated=["end_user"],
    )
    payload = Payload(request_id="req-full", policy="redacted",
                      prompt='[{"role": "user", "content": "mail [EMAIL]"}]', completion="Sure.")
    return record, payload


M005_COLUMNS = ("client_request_id", "truncated")
COLUMNS_BEFORE_M005 = tuple(c for c in REQUEST_COLUMNS if c not in M005_COLUMNS)


def rows_before_m005(records: list[Record]) -> list[dict[str, Any]]:
    """The ``requests`` rows of records as a store before m005 wrote them (no client id)."""
    return [{name: value for name, value in zip(REQUEST_COLUMNS, record_values(r), strict=True)
             if name not in M005_COLUMNS} for r in records]
