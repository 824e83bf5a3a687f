"""Prometheus metrics of the gateway, named after the OpenTelemetry GenAI conventions
(``gen_ai.server.request.duration`` → ``gen_ai_server_request_duration_seconds``, ...) plus
Warden's own under ``warden_``. One registry per gateway; nothing global.

Every label value comes from a bounded set: the configured models and deployments, the error
types and statuses the code defines, the guard's scanners and finding types. The one value a
client chooses, the model it asks for, becomes a label only when a configured route has that
name; any other (an unknown model, a 404) is counted under ``model="unknown"``, so a client
cannot add series to ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from warden.observe.record import Record
from warden.observe.recorder import RecorderStats
from warden.routing.breaker import BreakerState
from warden.routing.deployment import LiveDeployment

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
PER_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
UNKNOWN_MODEL = "unknown"
_BREAKER = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class GatewayMetrics:
    """The metrics a finished Record updates, and the gauges read at scrape time."""

    def __init__(self, deployments: Callable[[], list[LiveDeployment]],
                 in_flight: Callable[[], int], recorder: Callable[[], RecorderStats]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._deployments = deployments
        labels = ["model", "deployment", "provider"]
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds", "Time from request to the end of the answer.",
            [*labels, "status", "error_type"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds", "Time to the first streamed chunk.",
            labels, buckets=DURATION_BUCKETS, registry=self.registry)
        self.per_token = Histogram(
            "gen_ai_server_time_per_output_token_seconds", "Time per output token after the first.",
            labels, buckets=PER_TOKEN_BUCKETS, registry=self.registry)
        self.tokens = Histogram(
            "gen_ai_client_token_usage", "Tokens per request, by type (input, output).",
            [*labels, "gen_ai_token_type"], buckets=TOKEN_BUCKETS, registry=self.registry)
        self.requests = Counter(
            "warden_requests", "Requests by status and error type.",
            ["model", "status", "error_type"], registry=self.registry)
        self.attempts = Counter(
            "warden_upstream_attempts", "Upstream attempts by outcome.",
            ["model", "deployment", "outcome"], registry=self.registry)
        self.retries = Counter(
            "warden_upstream_retries", "Attempts after the first of a request.",
            ["model"], registry=self.registry)
        self.cost = Counter(
            "warden_cost_usd", "Spend in USD of requests with a known price.",
            ["model", "deployment"], registry=self.registry)
        self.unknown_cost = Counter(
            "warden_cost_unknown_requests", "Requests whose price is unknown.",
            ["model", "deployment"], registry=self.registry)
        self.guard = Counter(
            "warden_guard_actions", "Guard findings by scanner, type, action and direction.",
            ["model", "scanner", "type", "action", "where"], registry=self.registry)
        self.registry.register(_ScrapeTime(deployments, in_flight, recorder))

    def model_label(self, model: str) -> str:
        """``model`` when a configured route has that name, else ``UNKNOWN_MODEL``."""
        if any(d.model == model for d in self._deployments()):
            return model
        return UNKNOWN_MODEL

    def observe(self, r: Record) -> None:
        dep, provider = r.deployment or "", r.provider or ""
        model = self.model_label(r.model)
        self.requests.labels(model, r.status, r.error_type or "").inc()
        self.duration.labels(model, dep, provider, r.status, r.error_type or "").observe(
            r.latency_s)
        for a in r.attempts:
            self.attempts.labels(model, a.deployment,
                                 "ok" if a.error_type is None else "error").inc()
        if len(r.attempts) > 1:
            self.retries.labels(model).inc(len(r.attempts) - 1)
        for f in r.findings:
            self.guard.labels(model, f.scanner, f.type, f.action, f.where).inc()
        if r.deployment is None:
            return
        if r.ttft_s is not None and r.stream:
            self.ttft.labels(model, dep, provider).observe(r.ttft_s)
            if r.output_tokens > 1:
                self.per_token.labels(model, dep, provider).observe(
                    (r.latency_s - r.ttft_s) / (r.output_tokens - 1))
        if r.input_tokens:
            self.tokens.labels(model, dep, provider, "input").observe(r.input_tokens)
        if r.output_tokens:
            self.tokens.labels(model, dep, provider, "output").observe(r.output_tokens)
        if r.cost_usd is not None:
            self.cost.labels(model, dep).inc(r.cost_usd)
        elif r.status == "ok":
            self.unknown_cost.labels(model, dep).inc()


class _ScrapeTime:
    """Gauges read when Prometheus scrapes: load, breakers, the recorder's queue and spool."""

    def __init__(self, deployments: Callable[[], list[LiveDeployment]],
                 in_flight: Callable[[], int], recorder: Callable[[], RecorderStats]) -> None:
        self._deployments = deployments
        self._in_flight = in_flight
        self._recorder = recorder

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("warden_requests_in_flight", "Requests being answered.",
                                value=self._in_flight())
        breaker = GaugeMetricFamily("warden_breaker_state",
                                    "Circuit breaker: 0 closed, 1 half-open, 2 open.",
                                    labels=["model", "deployment"])
        load = GaugeMetricFamily("warden_deployment_in_flight", "Requests on a deployment.",
                                 labels=["model", "deployment"])
        opened = CounterMetricFamily("warden_breaker_opened", "Times a breaker opened.",
                                     labels=["model", "deployment"])
        rejected = CounterMetricFamily(
            "warden_upstream_usage_rejected", "Answers whose usage was implausible or malformed "
            "and was replaced by an estimate.", labels=["model", "deployment"])
        for d in self._deployments():
            breaker.add_metric([d.model, d.id], _BREAKER[d.breaker.state])
            load.add_metric([d.model, d.id], d.in_flight)
            opened.add_metric([d.model, d.id], d.breaker.opened_count)
            rejected.add_metric([d.model, d.id], d.usage_rejected)
        yield breaker
        yield load
        yield opened
        yield rejected
        s = self._recorder()
        yield GaugeMetricFamily("warden_recorder_queue_depth", "Records waiting in memory.",
                                value=s.queue_depth)
        yield GaugeMetricFamily("warden_recorder_spooled_records", "Records in the spool file.",
                                value=s.spooled)
        yield GaugeMetricFamily("warden_recorder_spool_bytes", "Size of the spool file.",
                                value=s.spool_bytes)
        yield CounterMetricFamily("warden_recorder_written", "Records written to the store.",
                                  value=s.written)
        yield CounterMetricFamily("warden_recorder_dropped", "Records that could not be kept.",
                                  value=s.dropped)
        yield CounterMetricFamily("warden_recorder_store_errors", "Failed store writes.",
                                  value=s.store_errors)
        yield CounterMetricFamily("warden_recorder_rejected", "Records the store refused, set "
                                  "aside in the spool's rejected file.", value=s.rejected)
        yield CounterMetricFamily("warden_recorder_repaired", "Records the store refused as they "
                                  "were and took cut to bounds.", value=s.repaired)
