"""What one Record may hold: the same bounds on every store, so that no record is refused by one.

A record is built from what a client and an upstream sent, and either may send anything: a NUL
character (PostgreSQL text and jsonb cannot hold one), a lone surrogate (not UTF-8: no driver
can send it), a 9,000-character user name (past PostgreSQL's index entry limit), a token count
of 1e30 (past the int4 columns), NaN, deep or huge metadata. ``bound_record`` returns a record
that every store takes:

- text: NUL characters and lone surrogates become U+FFFD; ids and names (indexed columns) are
  cut to ``MAX_NAME`` characters, error texts to ``MAX_TEXT``;
- numbers: finite, within their column's range (int4 for counts and statuses, which both
  backends hold; times within years 1970 to 5138), never negative; a field that is not a
  number becomes 0 (or None where it may be absent);
- tags: at most ``MAX_TAGS``, text keys and values of bounded length;
- attempts and findings: at most ``MAX_ATTEMPTS`` and ``MAX_FINDINGS``, their fields bounded
  as above;
- metadata: JSON values only (anything else as its text, and so a number past 2**53),
  ``MAX_DEPTH`` levels deep, at most ``MAX_ITEMS`` entries per object or list,
  ``MAX_METADATA_CHARS`` characters of keys and text in all.

The names of the fields that were changed are added to the record's ``truncated`` list, so
that a reader knows the record is not what was sent. A record within bounds comes back as it
is (the same object).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from warden.observe.record import AttemptRecord, Finding, Payload, Record

MAX_NAME = 256  # 1 KiB of UTF-8 at most: an index entry of PostgreSQL holds about 2.7 KiB
MAX_TEXT = 1000
MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 200
MAX_ATTEMPTS = 32
MAX_FINDINGS = 1000
MAX_DEPTH = 8
MAX_ITEMS = 256
MAX_METADATA_CHARS = 16_384
MAX_INT = 2**31 - 1  # int4, PostgreSQL's integer columns
MAX_TIME = 1e11  # unix seconds: the year 5138
_MAX_JSON_INT = 2**53  # what every JSON reader holds exactly
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_NAMES = ("request_id", "client_request_id", "trace_id", "api", "model", "deployment", "provider",
          "upstream_model", "model_version", "key_id", "team", "end_user", "session_id",
          "error_type", "region")
_COUNTS = ("input_tokens", "output_tokens", "cached_tokens")


def clean_text(text: str) -> str:
    """``text`` with NUL characters and lone surrogates replaced by U+FFFD."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    return _BAD_CHARS.sub("\ufffd", text)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    return clean_text(text[:limit])


def _optional_text(value: Any, limit: int) -> str | None:
    return None if value is None else _text(value, limit)


def _count(value: Any, high: int = MAX_INT) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return min(max(value, 0), high)
    if isinstance(value, float) and math.isfinite(value):
        return int(min(max(value, 0.0), float(high)))
    return 0


def _number(value: Any, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
    if math.isnan(number):
        return 0.0
    return min(max(number, 0.0), high)


def _optional_number(value: Any, high: float) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return _number(value, high)


def _optional_count(value: Any) -> int | None:
    return None if value is None else _count(value)


def _attempt(a: AttemptRecord) -> AttemptRecord:
    return AttemptRecord(
        model=_text(a.model, MAX_NAME), deployment=_text(a.deployment, MAX_NAME),
        provider=_text(a.provider, MAX_NAME), started_s=_number(a.started_s, MAX_TIME),
        latency_s=_number(a.latency_s, MAX_TIME), status=_count(a.status, 999),
        error_type=_optional_text(a.error_type, MAX_NAME), error=_optional_text(a.error, MAX_TEXT),
    )


def _finding(f: Finding) -> Finding:
    return Finding(
        scanner=_text(f.scanner, MAX_NAME), type=_text(f.type, MAX_NAME),
        action=_text(f.action, MAX_NAME), score=_number(f.score, MAX_TIME),
        where="output" if f.where == "output" else "input", start=_optional_count(f.start),
        end=_optional_count(f.end), part=_optional_count(f.part),
    )


class _Budget:
    """What is left of the metadata's characters; ``cut`` when something was left out."""

    def __init__(self, chars: int) -> None:
        self.chars = chars
        self.cut = False

    def text(self, value: str, limit: int) -> str | None:
        if self.chars <= 0:
            self.cut = True
            return None
        kept = value[:min(limit, self.chars)]
        self.cut = self.cut or len(kept) < len(value)
        self.chars -= len(kept)
        return clean_text(kept)


def _json(value: Any, depth: int, budget: _Budget) -> Any:
    """A JSON value within the metadata's bounds (None when nothing of it fits)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_MAX_JSON_INT <= value <= _MAX_JSON_INT:
            return value
        return budget.text(str(value)[:64], 64)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # PostgreSQL's jsonb gives 1e300 back as 1 and 300 zeros: an integer no JSON writer
        # of 64 bits takes. Such a number is kept as its text.
        return value if abs(value) < _MAX_JSON_INT else budget.text(repr(value), 64)
    if isinstance(value, str):
        return budget.text(value, MAX_METADATA_CHARS)
    if depth >= MAX_DEPTH:
        budget.cut = True
        return None
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for n, (key, item) in enumerate(value.items()):
            name = budget.text(key if isinstance(key, str) else str(key), MAX_NAME)
            if n >= MAX_ITEMS or name is None:
                budget.cut = True
                break
            out[name] = _json(item, depth + 1, budget)
        return out
    if isinstance(value, list | tuple):
        if len(value) > MAX_ITEMS:
            budget.cut = True
        return [_json(item, depth + 1, budget) for item in value[:MAX_ITEMS]]
    return budget.text(str(value), MAX_NAME)  # what JSON cannot hold is kept as its text


def bound_metadata(metadata: Any) -> tuple[dict[str, Any], bool]:
    """Metadata within the bounds, and whether anything was cut from it."""
    budget = _Budget(MAX_METADATA_CHARS)
    if not isinstance(metadata, Mapping):
        return {}, metadata is not None and metadata != {}
    try:
        bounded = _json(metadata, 0, budget)
    except RecursionError:  # a mapping of a type whose items() recurses: keep nothing of it
        return {}, True
    return bounded, budget.cut


def bound_tags(tags: Any) -> dict[str, str]:
    """At most ``MAX_TAGS`` tags, their keys and values text of bounded length."""
    if not isinstance(tags, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, value in tags.items():
        if len(out) >= MAX_TAGS:
            break
        out[_text(key, MAX_TAG_KEY)] = _text(value, MAX_TAG_VALUE)
    return out


def bound_record(record: Record) -> Record:
    """``record`` within the bounds of the module docstring: itself when it is, else a copy
    whose ``truncated`` names the fields that changed."""
    values: dict[str, Any] = {}
    for name in _NAMES:
        values[name] = _optional_text(getattr(record, name), MAX_NAME)
    for name in ("request_id", "trace_id", "api", "model"):
        values[name] = values[name] or ""
    values["error_message"] = _optional_text(record.error_message, MAX_TEXT)
    for name in _COUNTS:
        values[name] = _count(getattr(record, name))
    values["http_status"] = _count(record.http_status, 999)
    values["started_at"] = _number(record.started_at, MAX_TIME)
    values["ended_at"] = _number(record.ended_at, MAX_TIME)
    values["latency_s"] = _number(record.latency_s, MAX_TIME)
    values["ttft_s"] = _optional_number(record.ttft_s, MAX_TIME)
    values["output_tokens_per_s"] = _optional_number(record.output_tokens_per_s, MAX_TIME)
    values["cost_usd"] = _optional_number(record.cost_usd, MAX_TIME)
    values["stream"] = record.stream is True
    values["status"] = record.status if record.status in ("ok", "error", "blocked") else "error"
    values["cache"] = record.cache if record.cache in ("hit", "miss", "bypass") else "bypass"
    attempts = record.attempts if isinstance(record.attempts, list) else []
    values["attempts"] = [_attempt(a) for a in attempts[:MAX_ATTEMPTS]
                          if isinstance(a, AttemptRecord)]
    findings = record.findings if isinstance(record.findings, list) else []
    values["findings"] = [_finding(f) for f in findings[:MAX_FINDINGS] if isinstance(f, Finding)]
    values["tags"] = bound_tags(record.tags)
    metadata, cut = bound_metadata(record.metadata)
    values["metadata"] = metadata
    changed = [name for name, value in values.items() if not _same(getattr(record, name), value)]
    if cut and "metadata" not in changed:
        changed.append("metadata")
    if not changed:
        return record
    earlier = record.truncated if isinstance(record.truncated, list) else []
    values["truncated"] = sorted({*(_text(n, MAX_NAME) for n in earlier[:MAX_TAGS]), *changed})
    return dataclasses.replace(record, **values)


def _same(before: Any, after: Any) -> bool:
    """Whether a bounded value is the value it came from, type included (1.0 is not 1)."""
    if type(before) is not type(after):
        return False
    if isinstance(before, float) and math.isnan(before):
        return False
    try:
        return bool(before == after)
    except RecursionError:  # a value that contains itself: it was changed, certainly
        return False


def bound_payload(payload: Payload) -> Payload:
    """``payload`` with its text cleaned (NUL characters and lone surrogates replaced); itself
    when nothing needed it."""
    prompt = None if payload.prompt is None else clean_text(str(payload.prompt))
    completion = None if payload.completion is None else clean_text(str(payload.completion))
    request_id = _text(payload.request_id, MAX_NAME)
    policy = payload.policy if payload.policy in ("full", "redacted", "none") else "full"
    if (prompt, completion, request_id, policy) == (payload.prompt, payload.completion,
                                                     payload.request_id, payload.policy):
        return payload
    return Payload(request_id=request_id, policy=policy, prompt=prompt, completion=completion)
