"""Serving statistics of a local engine, exported in the style of vLLM's metrics."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)
ITL_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
E2E_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0)


@dataclass
class Histogram:
    """A cumulative-on-export histogram with fixed upper bounds."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(float(bound)), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


@dataclass
class EngineStats:
    """Counters and histograms kept by one engine; read at scrape time, never on the hot path."""

    running: int = 0
    waiting: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: int = 0
    errors: int = 0
    rejected: int = 0
    kv_cache_usage: float = 0.0
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    itl: Histogram = field(default_factory=lambda: Histogram(ITL_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))

    def families(self, model: str, deployment: str) -> Iterator[Metric]:
        labels = ["model_name", "deployment"]
        values = [model, deployment]

        def gauge(name: str, doc: str, value: float) -> Metric:
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(values, value)
            return g

        def counter(name: str, doc: str, value: float) -> Metric:
            c = CounterMetricFamily(name, doc, labels=labels)
            c.add_metric(values, value)
            return c

        def histogram(name: str, doc: str, h: Histogram) -> Metric:
            m = HistogramMetricFamily(name, doc, labels=labels)
            m.add_metric(values, h.buckets(), h.total)
            return m

        yield gauge("vllm:num_requests_running", "Requests decoding in a slot.", self.running)
        yield gauge("vllm:num_requests_waiting", "Requests queued for a slot.", self.waiting)
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache use, 1 = full.", self.kv_cache_usage)
        yield counter("vllm:prompt_tokens", "Prompt tokens processed.", self.prompt_tokens)
        yield counter("vllm:generation_tokens", "Tokens generated.", self.generation_tokens)
        yield counter("vllm:request_success", "Requests finished.", self.success)
        yield counter("warden_local_request_errors", "Requests that failed in the engine.",
                      self.errors)
        yield counter("warden_local_requests_rejected", "Requests refused: the queue was full.",
                      self.rejected)
        yield histogram("vllm:time_to_first_token_seconds", "Time to the first token.", self.ttft)
        yield histogram("vllm:inter_token_latency_seconds", "Time between streamed tokens.",
                        self.itl)
        yield histogram("vllm:e2e_request_latency_seconds", "Whole request latency.", self.e2e)
