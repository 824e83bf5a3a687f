"""A sampler of process and host resources: CPU, memory, and GPU where NVML is present.

Samples are kept as a bounded time series (for the dashboard and ``GET /api/resources``) and
exported as gauges at ``/metrics``. Sampling runs in a background task, every ``interval_s``;
NVML (the ``nvidia-ml-py`` package and an NVIDIA driver) is optional and probed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger("warden.resources")


@dataclass(slots=True, frozen=True)
class GpuSample:
    index: int
    name: str
    utilization: float  # 0..1
    memory_used_bytes: int
    memory_total_bytes: int


@dataclass(slots=True, frozen=True)
class Sample:
    at: float
    process_cpu: float  # cores in use by this process (1.0 = one full core)
    process_rss_bytes: int
    host_cpu: float  # 0..1 of all cores
    host_memory_used_bytes: int
    host_memory_total_bytes: int
    gpus: tuple[GpuSample, ...] = field(default_factory=tuple)


class _Nvml:
    """NVML when available; otherwise reports no GPUs."""

    def __init__(self) -> None:
        self._lib: Any = None
        try:
            lib = importlib.import_module("pynvml")
            lib.nvmlInit()
            self._lib = lib
        except ImportError:
            log.debug("NVML not installed: no GPU metrics")
        except Exception as exc:  # noqa: BLE001 - NVML raises its own error types without a driver
            log.info("NVML present but unusable (%s): no GPU metrics", exc)

    def sample(self) -> tuple[GpuSample, ...]:
        lib = self._lib
        if lib is None:
            return ()
        out = []
        for i in range(lib.nvmlDeviceGetCount()):
            handle = lib.nvmlDeviceGetHandleByIndex(i)
            util = lib.nvmlDeviceGetUtilizationRates(handle)
            mem = lib.nvmlDeviceGetMemoryInfo(handle)
            name = lib.nvmlDeviceGetName(handle)
            out.append(GpuSample(i, name.decode() if isinstance(name, bytes) else str(name),
                                 util.gpu / 100.0, int(mem.used), int(mem.total)))
        return tuple(out)


class ResourceSampler:
    """Samples every ``interval_s`` into a ring of ``keep`` samples."""

    def __init__(self, interval_s: float = 5.0, keep: int = 720) -> None:
        self.interval_s = interval_s
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement
        psutil.cpu_percent(None)
        self._nvml = _Nvml()
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        mem = psutil.virtual_memory()
        s = Sample(
            at=time.time(),
            process_cpu=self._process.cpu_percent(None) / 100.0,
            process_rss_bytes=int(self._process.memory_info().rss),
            host_cpu=psutil.cpu_percent(None) / 100.0,
            host_memory_used_bytes=int(mem.total - mem.available),
            host_memory_total_bytes=int(mem.total),
            gpus=self._nvml.sample(),
        )
        self.samples.append(s)
        return s

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="warden-resources")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    def collect(self) -> Iterable[Metric]:
        """Gauges of the latest sample (the Prometheus collector protocol)."""
        if not self.samples:
            return
        s = self.samples[-1]
        yield GaugeMetricFamily("warden_process_cpu_cores", "CPU cores used by the gateway.",
                                value=s.process_cpu)
        yield GaugeMetricFamily("warden_process_resident_memory_bytes", "Gateway RSS.",
                                value=s.process_rss_bytes)
        yield GaugeMetricFamily("warden_host_cpu_utilization", "Host CPU use, 0..1.",
                                value=s.host_cpu)
        yield GaugeMetricFamily("warden_host_memory_used_bytes", "Host memory in use.",
                                value=s.host_memory_used_bytes)
        yield GaugeMetricFamily("warden_host_memory_total_bytes", "Host memory.",
                                value=s.host_memory_total_bytes)
        if s.gpus:
            util = GaugeMetricFamily("warden_gpu_utilization", "GPU use, 0..1.",
                                     labels=["gpu", "name"])
            used = GaugeMetricFamily("warden_gpu_memory_used_bytes", "GPU memory in use.",
                                     labels=["gpu", "name"])
            total = GaugeMetricFamily("warden_gpu_memory_total_bytes", "GPU memory.",
                                      labels=["gpu", "name"])
            for g in s.gpus:
                util.add_metric([str(g.index), g.name], g.utilization)
                used.add_metric([str(g.index), g.name], g.memory_used_bytes)
                total.add_metric([str(g.index), g.name], g.memory_total_bytes)
            yield util
            yield used
            yield total
