"""Records to table rows and back: scalars in columns, lists and dicts as JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from warden.observe.record import AttemptRecord, Finding, Payload, Record
from warden.store.base import Feedback

_JSON_FIELDS = ("attempts", "findings", "tags", "metadata")
_SCALARS = tuple(f.name for f in dataclasses.fields(Record) if f.name not in _JSON_FIELDS)


def _text(value: str | None, nul_free: bool) -> str | None:
    # PostgreSQL text cannot hold NUL characters; one in a prompt must not lose the whole batch.
    if nul_free and value is not None and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def record_row(record: Record, nul_free: bool = False) -> dict[str, Any]:
    """The ``requests`` row of a record. ``nul_free`` replaces NUL characters (PostgreSQL)."""
    row: dict[str, Any] = {name: getattr(record, name) for name in _SCALARS}
    row["error_message"] = _text(record.error_message, nul_free)
    row["attempts"] = [dataclasses.asdict(a) for a in record.attempts]
    row["findings"] = [dataclasses.asdict(f) for f in record.findings]
    row["tags"] = dict(record.tags)
    row["metadata"] = record.metadata
    return row


def tag_rows(record: Record) -> list[dict[str, Any]]:
    """The ``request_tags`` rows of a record, one per tag."""
    return [{"request_id": record.request_id, "key": k, "value": v} for k, v in record.tags.items()]


def payload_row(payload: Payload, nul_free: bool = False) -> dict[str, Any]:
    """The ``payloads`` row of a payload."""
    return {
        "request_id": payload.request_id,
        "policy": payload.policy,
        "prompt": _text(payload.prompt, nul_free),
        "completion": _text(payload.completion, nul_free),
    }


def to_record(row: sa.Row[Any]) -> Record:
    """The Record of a ``requests`` row."""
    m = row._mapping
    values = {name: m[name] for name in _SCALARS}
    values["stream"] = bool(values["stream"])
    return Record(
        **values,
        attempts=[AttemptRecord(**a) for a in m["attempts"]],
        findings=[Finding(**f) for f in m["findings"]],
        tags=dict(m["tags"]),
        metadata=dict(m["metadata"]),
    )


def to_payload(row: sa.Row[Any]) -> Payload:
    """The Payload of a ``payloads`` row."""
    m = row._mapping
    return Payload(request_id=m["request_id"], policy=m["policy"], prompt=m["prompt"],
                   completion=m["completion"])


def to_feedback(row: sa.Row[Any]) -> Feedback:
    """The Feedback of a ``feedback`` row."""
    m = row._mapping
    return Feedback(id=m["id"], request_id=m["request_id"], created_at=m["created_at"],
                    score=m["score"], label=m["label"], comment=m["comment"], source=m["source"])
