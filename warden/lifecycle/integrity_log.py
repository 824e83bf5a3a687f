"""``IntegrityLog``: where every model-integrity check of a gateway is kept.

One per gateway, created with the app and handed from runtime to runtime on reload (as the
limiter is), so that a check made by a refused reload is kept too. It holds the last outcome of
each deployment (``GET /api/deployments`` shows it under ``integrity``), counts the outcomes
(``warden_model_integrity_checks_total{model, deployment, result}``: it is a Prometheus
collector), and logs every failure at ERROR with the deployment, path, expected and found.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, Metric

from warden.lifecycle.integrity import IntegrityOutcome

log = logging.getLogger("warden.integrity")


class IntegrityLog:
    """Outcomes of model-integrity checks, by (model, deployment id)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], IntegrityOutcome] = {}
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def record(self, model: str, deployment: str, outcome: IntegrityOutcome) -> None:
        """Keep ``outcome`` as the deployment's last, count it, and log it when it failed."""
        self._last[(model, deployment)] = outcome
        self._counts[(model, deployment, outcome.result)] += 1
        if not outcome.ok:
            log.error("model integrity check failed: deployment %s/%s, path %s, result %s, "
                      "expected sha256 %s, found %s, signature %s: %s", model, deployment,
                      outcome.path, outcome.result, outcome.sha256_expected or "-",
                      outcome.sha256_found or "-", outcome.signature, outcome.error)

    def forget(self, model: str, deployment: str) -> None:
        """Drop the last outcome of a deployment that no longer loads a model file."""
        self._last.pop((model, deployment), None)

    def last(self, model: str, deployment: str) -> IntegrityOutcome | None:
        return self._last.get((model, deployment))

    def count(self, model: str, deployment: str, result: str) -> int:
        return self._counts[(model, deployment, result)]

    def collect(self) -> Iterable[Metric]:
        checks = CounterMetricFamily(
            "warden_model_integrity_checks", "Model-integrity checks of model files before "
            "loading, by result: ok, checksum_mismatch, signature_invalid, unrecorded, missing.",
            labels=["model", "deployment", "result"])
        for (model, deployment, result), n in sorted(self._counts.items()):
            checks.add_metric([model, deployment, result], n)
        yield checks
