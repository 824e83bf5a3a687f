"""A request's OpenTelemetry spans, built from its Record after it has ended.

The request path only notes timings; the spans are made here, on the exporter's thread, with the
ids the client and the upstreams saw: the server span's id is the one in the ``traceparent``
returned to the client, each attempt span's id is the one sent upstream with that attempt.
Attributes follow the OpenTelemetry GenAI semantic conventions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from warden.observe.record import Record

OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}
_FLAGS = TraceFlags(TraceFlags.SAMPLED)


@dataclass(slots=True, frozen=True)
class TraceNotes:
    """What the request path noted for its spans, beyond the Record."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    stages: tuple[tuple[str, float, float], ...]  # (name, start, end) seconds since request start
    attempt_span_ids: tuple[str, ...]
    params: Mapping[str, Any]


def request_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters a GenAI span reports (numbers only)."""
    out: dict[str, Any] = {}
    for key, attr in _REQUEST_PARAMS.items():
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[attr] = value
    return out


def _ctx(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=False, trace_flags=_FLAGS)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _server_attributes(r: Record, notes: TraceNotes) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATIONS.get(r.api, r.api),
        "gen_ai.request.model": r.model,
        "gen_ai.usage.input_tokens": r.input_tokens,
        "gen_ai.usage.output_tokens": r.output_tokens,
        "http.response.status_code": r.http_status,
        "warden.request_id": r.request_id,
        "warden.status": r.status,
        "warden.stream": r.stream,
        "warden.attempts": len(r.attempts),
        "warden.cache": r.cache,
        **notes.params,
    }
    optional = {
        "gen_ai.provider.name": r.provider,
        "gen_ai.response.model": r.upstream_model,
        "gen_ai.usage.cached_input_tokens": r.cached_tokens or None,
        "error.type": r.error_type,
        "warden.deployment": r.deployment,
        "warden.key_id": r.key_id,
        "warden.team": r.team,
        "warden.end_user": r.end_user,
        "warden.session_id": r.session_id,
        "warden.client_request_id": r.client_request_id,  # the client's x-request-id
        "warden.cost_usd": r.cost_usd,
        "warden.ttft_s": r.ttft_s,
        "warden.output_tokens_per_s": r.output_tokens_per_s,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    attrs.update({f"warden.tag.{k}": v for k, v in r.tags.items()})
    return attrs


def _status(ok: bool, description: str | None) -> Status:
    return Status(StatusCode.UNSET) if ok else Status(StatusCode.ERROR, description)


def spans_of(r: Record, notes: TraceNotes, resource: Resource,
             scope: InstrumentationScope) -> list[ReadableSpan]:
    """The server span of a request, one child per pipeline stage and one per upstream attempt."""
    server = _ctx(notes.trace_id, notes.span_id)
    parent = (SpanContext(notes.trace_id, notes.parent_span_id, is_remote=True,
                          trace_flags=_FLAGS) if notes.parent_span_id else None)
    operation = OPERATIONS.get(r.api, r.api)
    events = [
        Event("warden.guard.finding", {
            "warden.guard.scanner": f.scanner, "warden.guard.type": f.type,
            "warden.guard.action": f.action, "warden.guard.score": f.score,
            "warden.guard.where": f.where,
        }, timestamp=_ns(r.ended_at))
        for f in r.findings
    ]
    spans = [ReadableSpan(
        name=f"{operation} {r.model}".strip(), context=server, parent=parent, resource=resource,
        attributes=_server_attributes(r, notes), events=events, kind=SpanKind.SERVER,
        status=_status(r.status == "ok", r.error_message), start_time=_ns(r.started_at),
        end_time=_ns(r.ended_at), instrumentation_scope=scope,
    )]
    for name, start, end in notes.stages:
        spans.append(ReadableSpan(
            name=f"warden.{name}", context=_ctx(notes.trace_id, _new_span_id()),
            parent=server, resource=resource, kind=SpanKind.INTERNAL,
            start_time=_ns(r.started_at + start), end_time=_ns(r.started_at + end),
            instrumentation_scope=scope,
        ))
    for attempt, span_hex in zip(r.attempts, notes.attempt_span_ids, strict=False):
        ok = attempt.status == 200 and attempt.error_type is None
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": attempt.provider,
            "gen_ai.request.model": attempt.model,
            "warden.deployment": attempt.deployment,
            "http.response.status_code": attempt.status,
        }
        if attempt.error_type:
            attrs["error.type"] = attempt.error_type
        spans.append(ReadableSpan(
            name=f"{operation} {attempt.deployment}", context=_ctx(notes.trace_id,
                                                                  int(span_hex, 16)),
            parent=server, resource=resource, attributes=attrs, kind=SpanKind.CLIENT,
            status=_status(ok, attempt.error), start_time=_ns(r.started_at + attempt.started_s),
            end_time=_ns(r.started_at + attempt.started_s + attempt.latency_s),
            instrumentation_scope=scope,
        ))
    return spans


def _new_span_id() -> int:
    return int.from_bytes(os.urandom(8), "big") or 1
