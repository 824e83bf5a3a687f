"""Trace export: the request path hands over a finished request in O(1); a thread behind it
builds the spans and exports them in batches through OTLP (or any SpanExporter).

Traces are telemetry, not records: when the collector is down or slow, spans wait in a bounded
queue and past it new ones are dropped — counted in ``warden_trace_spans_total{outcome="dropped"}``
and logged — so that nothing a client waits for ever depends on the collector.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from warden.config import TracingSettings
from warden.observe.record import Record
from warden.observe.spans import TraceNotes, request_params, spans_of
from warden.pipeline.context import RequestContext

log = logging.getLogger("warden.tracing")
BATCH = 512
INTERVAL_S = 1.0


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector endpoint (``/v1/traces`` added to a bare host)."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _sampled(traceparent: str, parent: str | None, ratio: float) -> bool:
    if parent is not None:
        return traceparent.endswith("-01")  # the client decided for its own trace
    if ratio >= 1.0:
        return True
    # Decided by the trace id, so every replica decides alike for one trace.
    return int(traceparent[19:35], 16) < ratio * 2**64


class SpanShipper:
    """Builds and exports the spans of finished requests, behind the request path."""

    def __init__(self, settings: TracingSettings, exporter: SpanExporter) -> None:
        self._settings = settings
        self._exporter = exporter
        self._resource = Resource.create({"service.name": settings.service_name})
        self._scope = InstrumentationScope("warden")
        self._queue: collections.deque[tuple[Record, TraceNotes]] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.exported = 0
        self.dropped = 0
        self.failed = 0
        self._last_warning = 0.0

    @classmethod
    def from_settings(cls, settings: TracingSettings) -> SpanShipper | None:
        """An OTLP shipper when an endpoint is configured, else None (no spans are made)."""
        if not settings.otlp_endpoint:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint),
                                    headers=dict(settings.headers), timeout=settings.timeout_s)
        return cls(settings, exporter)

    def submit(self, record: Record, ctx: RequestContext) -> None:
        """Take a finished request's spans-to-be; O(1), never blocks, never raises."""
        tp = ctx.traceparent
        if not _sampled(tp, ctx.parent_span_id, self._settings.sample_ratio):
            return
        if len(self._queue) >= self._settings.queue_size:
            self.dropped += 1 + len(ctx.stages) + len(ctx.attempts)
            self._warn("span queue full (collector slow or down): dropping spans")
            return
        base = ctx.started
        notes = TraceNotes(
            trace_id=int(tp[3:35], 16),
            span_id=int(tp[36:52], 16),
            parent_span_id=int(ctx.parent_span_id, 16) if ctx.parent_span_id else None,
            stages=tuple((name, start - base, end - base) for name, start, end in ctx.stages),
            attempt_span_ids=tuple(a.span_id for a in ctx.attempts),
            params=request_params(ctx.body),
        )
        self._queue.append((record, notes))
        if len(self._queue) >= BATCH:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="warden-spans", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Export what is queued (within ``timeout_s``), then stop."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._exporter.shutdown()

    def _run(self) -> None:
        while True:
            self._wake.wait(INTERVAL_S)
            self._wake.clear()
            closing = self._closing
            while self._queue:
                self._ship(self._take())
            if closing:
                return

    def _take(self) -> list[tuple[Record, TraceNotes]]:
        batch: list[tuple[Record, TraceNotes]] = []
        while self._queue and len(batch) < BATCH:
            batch.append(self._queue.popleft())
        return batch

    def _ship(self, batch: list[tuple[Record, TraceNotes]]) -> None:
        spans = []
        for record, notes in batch:
            try:
                spans.extend(spans_of(record, notes, self._resource, self._scope))
            except (ValueError, TypeError):
                self.failed += 1
                log.exception("could not build the spans of request %s", record.request_id)
        if not spans:
            return
        try:
            result = self._exporter.export(spans)
        except Exception:  # an exporter bug must not stop the thread; counted and logged
            log.exception("span export raised")
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
            self._warn(f"span export failed: {len(spans)} span(s) lost")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10.0:
            self._last_warning = now
            log.warning("%s (exported %d, dropped %d, failed %d so far)", message,
                        self.exported, self.dropped, self.failed)

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector: spans by outcome and the export queue depth."""
        spans = CounterMetricFamily("warden_trace_spans", "Trace spans by outcome.",
                                    labels=["outcome"])
        spans.add_metric(["exported"], self.exported)
        spans.add_metric(["dropped"], self.dropped)
        spans.add_metric(["failed"], self.failed)
        yield spans
        yield GaugeMetricFamily("warden_trace_queue", "Requests whose spans wait for export.",
                                value=len(self._queue))
