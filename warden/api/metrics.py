"""``GET /metrics``: Prometheus exposition of what the gateway and its deployments report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import Response

from warden.runtime import RuntimeHolder


class _Snapshot:
    """A collector over metric families gathered beforehand (collection itself is async)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def merge(families: Iterable[Metric]) -> list[Metric]:
    """One family per name, with the samples of every deployment that reported it."""
    merged: dict[str, Metric] = {}
    for fam in families:
        if fam.name in merged:
            merged[fam.name].samples.extend(fam.samples)
        else:
            merged[fam.name] = fam
    return list(merged.values())


def metrics_endpoint(holder: RuntimeHolder,
                     gateway: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        families: list[Metric] = []
        for dep in holder.current.deployments:
            families.extend(await dep.provider.collect())
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(merge(families)))
        body = generate_latest(gateway) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics
