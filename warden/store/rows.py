"""Records to table rows and back: scalars in columns, lists and dicts as JSON text."""

from __future__ import annotations

import dataclasses
import json
import operator
from typing import Any

import orjson
import sqlalchemy as sa

from warden.observe.bounds import clean_text
from warden.observe.record import AttemptRecord, Finding, Payload, Record
from warden.store.base import Feedback

_JSON_FIELDS = ("attempts", "findings", "tags", "metadata", "truncated")
_SCALARS = tuple(f.name for f in dataclasses.fields(Record) if f.name not in _JSON_FIELDS)
REQUEST_COLUMNS = _SCALARS + _JSON_FIELDS
"""The ``requests`` columns in the order of ``record_values``."""
TAG_COLUMNS = ("request_id", "key", "value", "started_at")
FINDING_COLUMNS = ("request_id", "seq", "started_at", "scanner", "type", "action", "direction",
                   "score")
PAYLOAD_COLUMNS = ("request_id", "policy", "prompt", "completion")
_scalars = operator.attrgetter(*_SCALARS)
_ERROR_MESSAGE = _SCALARS.index("error_message")
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """JSON text of a column value. A value JSON cannot hold is kept as its text (``str``), so
    that one odd metadata value does not lose a batch; NaN and infinities become null."""
    try:
        return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        # Integers past 64 bits, and what orjson refuses: the standard library's encoder takes
        # them (it raises in turn for a value that refers to itself: that record is refused).
        return json.dumps(value, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    # What orjson writes natively and the standard library does not: attempts and findings.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL characters, and no driver sends a lone surrogate: one in
    # a prompt must not lose the whole batch. Both backends keep the same text.
    return None if value is None else clean_text(value)


def record_values(record: Record) -> tuple[Any, ...]:
    """The ``requests`` row of a record, as a tuple in ``REQUEST_COLUMNS`` order, its JSON
    columns as text. The record is taken as it is (``warden.observe.bounds`` keeps what every
    backend can hold), but for NUL characters and lone surrogates in its error message."""
    values = _scalars(record)
    if record.error_message is not None:  # free text, from anywhere: as a payload's text
        values = (*values[:_ERROR_MESSAGE], _text(record.error_message),
                  *values[_ERROR_MESSAGE + 1:])
    # orjson writes the attempt and finding dataclasses as objects of their fields, in order.
    return (*values, dumps(record.attempts), dumps(record.findings), dumps(record.tags),
            dumps(record.metadata), dumps(record.truncated))


def tag_values(record: Record) -> list[tuple[str, str, str, float]]:
    """The ``request_tags`` rows of a record, one per tag, in ``TAG_COLUMNS`` order."""
    rid, at = record.request_id, record.started_at
    return [(rid, k, v, at) for k, v in record.tags.items()]


def finding_values(record: Record) -> list[tuple[str, int, float, str, str, str, str, float]]:
    """The ``request_findings`` rows of a record, one per finding, in ``FINDING_COLUMNS`` order."""
    rid, at = record.request_id, record.started_at
    return [(rid, i, at, f.scanner, f.type, f.action, f.where, f.score)
            for i, f in enumerate(record.findings)]


def payload_values(payload: Payload) -> tuple[str, str, str | None, str | None]:
    """The ``payloads`` row of a payload, in ``PAYLOAD_COLUMNS`` order; NUL characters and lone
    surrogates in its text replaced (on every backend alike)."""
    return (payload.request_id, payload.policy, _text(payload.prompt), _text(payload.completion))


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
        truncated=list(m["truncated"]),
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
