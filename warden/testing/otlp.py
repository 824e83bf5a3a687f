"""A small OTLP/HTTP trace collector: a real server that decodes what exporters send, so tests
can read the spans back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from warden.testing.httpserver import HttpServer, RawRequest, Responder


@dataclass(slots=True)
class CollectedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


@dataclass
class OtlpCollector:
    """Accepts ``POST /v1/traces`` (protobuf) and keeps the spans; ``fail_status`` refuses."""

    spans: list[CollectedSpan] = field(default_factory=list)
    posts: int = 0
    fail_status: int | None = None
    headers: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.http = HttpServer(self._handle)

    @property
    def endpoint(self) -> str:
        return self.http.url

    async def _handle(self, req: RawRequest, resp: Responder) -> None:
        if req.method != "POST" or req.path != "/v1/traces":
            await resp.send_json(404, {"error": "not found"})
            return
        with self._lock:
            self.posts += 1
            self.headers.append(req.headers)
        if self.fail_status is not None:
            await resp.send_json(self.fail_status, {"error": "refused"})
            return
        message = ExportTraceServiceRequest()
        message.ParseFromString(req.body)
        got = []
        for rs in message.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append(CollectedSpan(
                        name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(), kind=s.kind,
                        start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                        status_code=s.status.code,
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        events=[(e.name, {a.key: _value(a.value) for a in e.attributes})
                                for e in s.events],
                        resource=resource,
                    ))
        with self._lock:
            self.spans.extend(got)
        body = ExportTraceServiceResponse().SerializeToString()
        await resp.send_bytes(200, body, "application/x-protobuf")

    def by_trace(self, trace_id: str) -> list[CollectedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]
