"""Garbage-collection pauses, as a histogram per generation (``warden_gc_pause_seconds``), and
the objects kept out of the collector's reach (``warden_gc_frozen_objects``, see
``create_app(freeze_startup=...)``).

A collection stops every Python thread of the process, request handlers included, so its
pauses show up in the gateway's latency; this makes them visible at ``/metrics``. The timing
runs in ``gc.callbacks`` (two clock reads per collection); ``start`` and ``stop`` add and remove
the callback.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GENERATIONS = 3


class GcPauses:
    """A prometheus collector of this process's garbage-collection pauses."""

    def __init__(self) -> None:
        # Reentrant: reading the histogram allocates, and a collection that triggers runs the
        # callback on the reading thread, inside the lock it holds.
        self._lock = threading.RLock()
        self._started: float | None = None
        # Per generation: the count in each bucket (the last one +Inf), and the sum.
        self._counts = [[0] * (len(BUCKETS) + 1) for _ in range(GENERATIONS)]
        self._sums = [0.0] * GENERATIONS

    def start(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Collections run one at a time (the interpreter holds a lock around them).
        if phase == "start":
            self._started = time.perf_counter()
            return
        started, self._started = self._started, None
        if started is None:
            return
        seconds = time.perf_counter() - started
        generation = int(info.get("generation", GENERATIONS - 1))
        bucket = next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))
        with self._lock:
            self._counts[generation][bucket] += 1
            self._sums[generation] += seconds

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(
            "warden_gc_pause_seconds",
            "Garbage-collection pauses of the gateway process (every thread waits), by "
            "generation (2: a full collection).", labels=["generation"])
        with self._lock:
            counts = [list(c) for c in self._counts]
            sums = list(self._sums)
        for generation in range(GENERATIONS):
            cumulative, buckets = 0, []
            for le, n in zip((*map(str, BUCKETS), "+Inf"), counts[generation], strict=True):
                cumulative += n
                buckets.append((le, float(cumulative)))
            family.add_metric([str(generation)], buckets, sums[generation])
        yield family
        yield GaugeMetricFamily(
            "warden_gc_frozen_objects", "Objects made at start that collections do not walk "
            "(gc.freeze).", value=gc.get_freeze_count())
