"""Active health checks: probe deployments on an interval and mark them healthy or not."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from warden.config import HealthCheck
from warden.errors import WardenError
from warden.routing.deployment import LiveDeployment

log = logging.getLogger("warden.health")


class HealthChecker:
    """One background task probing the deployments whose model enables health checks."""

    def __init__(self, targets: list[tuple[LiveDeployment, HealthCheck]]) -> None:
        self._targets = [(d, hc) for d, hc in targets if hc.enabled]
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._targets and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="warden-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # The task was cancelled by us: CancelledError is its expected ending.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def probe_once(self) -> None:
        await asyncio.gather(*(self._probe(d, hc) for d, hc in self._targets))

    async def _run(self) -> None:
        interval = min(hc.interval_s for _, hc in self._targets)
        while True:
            await self.probe_once()
            await asyncio.sleep(interval)

    async def _probe(self, dep: LiveDeployment, hc: HealthCheck) -> None:
        try:
            await dep.provider.check(hc.timeout_s)
        except WardenError as exc:
            if dep.healthy:
                log.warning("deployment %s/%s failed its health check: %s",
                            dep.model, dep.id, exc.message)
            dep.healthy = False
            dep.last_error = exc.message
            return
        if not dep.healthy:
            log.info("deployment %s/%s is healthy again", dep.model, dep.id)
        dep.healthy = True
