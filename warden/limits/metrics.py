"""The limiter's Prometheus metrics, read at scrape time from its ``LimitStats``."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from warden.limits.limiter import LimitStats


class LimitMetrics:
    """A collector: rejections by scope and kind, backend errors, unpriced spend, budget use."""

    def __init__(self, stats: LimitStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self._stats
        rejections = CounterMetricFamily(
            "warden_limit_rejections", "Requests refused by a limit or budget, by the rule's "
            "scope and kind (requests, tokens, budget).", labels=["scope", "kind"])
        for (scope, kind), n in list(s.rejections.items()):
            rejections.add_metric([scope, kind], n)
        yield rejections
        errors = CounterMetricFamily(
            "warden_limit_backend_errors", "Calls to the limits backend (Redis) that failed, by "
            "what followed: allowed, refused, or a settlement lost.", labels=["outcome"])
        for outcome, n in list(s.backend_errors.items()):
            errors.add_metric([outcome], n)
        yield errors
        unpriced = CounterMetricFamily(
            "warden_budget_unpriced_requests", "Requests under a budget whose price is unknown "
            "(their spend counted 0).", labels=["model"])
        for model, n in list(s.unpriced.items()):
            unpriced.add_metric([model], n)
        yield unpriced
        used = GaugeMetricFamily("warden_budget_used_usd", "USD spent in the current period, as "
                                 "last seen by this replica.", labels=["scope", "subject", "period"])
        allowed = GaugeMetricFamily("warden_budget_limit_usd", "USD allowed per period.",
                                    labels=["scope", "subject", "period"])
        for labels, (usd, limit) in list(s.budgets.items()):
            used.add_metric(list(labels), usd)
            allowed.add_metric(list(labels), limit)
        yield used
        yield allowed
