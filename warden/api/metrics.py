"""``GET /metrics``: Prometheus exposition of what the gateway and its deployments report, to
whom ``server.metrics`` allows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import Response

from warden.access.roles import Principal
from warden.api.admin import authorize
from warden.api.responses import error_response
from warden.errors import NotFound, WardenError
from warden.runtime import RuntimeHolder

#: The label of the series that name a key or a team (budget spend and limits).
SUBJECT_LABEL = "subject"


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


def metrics_endpoint(holder: RuntimeHolder, gateway: CollectorRegistry, *,
                     own_port: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics`` as ``server.metrics`` says: on the main port behind a key that may
    read (or for anyone, ``access: public``), or on its own port (``own_port``) for anyone.
    The series labelled with key and team names are left out unless the caller's key reads
    every team, or ``subjects`` lets anyone see them."""

    async def metrics(request: Request) -> Response:
        settings = holder.current.config.server.metrics
        if own_port or settings.access == "public":
            subjects = settings.subjects
        elif settings.port is not None:
            return error_response(NotFound(
                f"/metrics is served on {settings.host}:{settings.port} (server.metrics.port), "
                "not on this port."))
        else:
            try:
                who = _reader(holder, request)
            except WardenError as exc:
                return error_response(exc)
            subjects = who is None or who.team_scope is None
        families: list[Metric] = []
        for dep in holder.current.deployments:
            families.extend(await dep.provider.collect())
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(merge(families)))
        own = CollectorRegistry(auto_describe=False)
        own.register(_Snapshot(fam for fam in gateway.collect()
                               if subjects or not _names_subjects(fam)))
        body = generate_latest(own) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def _reader(holder: RuntimeHolder, request: Request) -> Principal | None:
    """The key that may read the metrics; None on a gateway without any key (its /v1 is open
    too, and it serves on loopback only)."""
    auth = holder.current.authenticate
    if not auth.has_admin and auth.open:
        return None
    return authorize(holder, request, "read")


def _names_subjects(family: Metric) -> bool:
    return any(SUBJECT_LABEL in sample.labels for sample in family.samples)
