"""create_app: the ASGI application, composed in one place."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.access.keyring import Keyring
from warden.access.session import SessionSecrets
from warden.api.admin import AdminApi, reload_from_file
from warden.api.budgets import BudgetsApi
from warden.api.findings import FindingsApi
from warden.api.keys import KeysApi
from warden.api.metrics import metrics_endpoint
from warden.api.openai import OpenAIApi
from warden.api.query import QueryApi
from warden.api.responses import (
    JSON,
    handle_http_exception,
    handle_unexpected,
    handle_warden_error,
)
from warden.api.session import SessionCookies
from warden.api.summary import SummaryApi
from warden.config import Config
from warden.errors import WardenError
from warden.lifecycle.integrity_log import IntegrityLog
from warden.limits.limiter import Limiter
from warden.limits.metrics import LimitMetrics
from warden.observe.gcpauses import GcPauses
from warden.observe.keeper import RecordKeeper
from warden.observe.metrics import GatewayMetrics
from warden.observe.resources import ResourceSampler
from warden.plugins import ProviderRegistry, ScannerRegistry, make_plugin_manager
from warden.runtime import RuntimeHolder, build_runtime
from warden.store.base import Store
from warden.ui.dashboard import Dashboard

log = logging.getLogger("warden")


def create_app(
    config: Config,
    *,
    config_path: Path | None = None,
    registry: ProviderRegistry | None = None,
    env: Mapping[str, str] | None = None,
    handle_sighup: bool = False,
    freeze_startup: bool = False,
    keeper: RecordKeeper | None = None,
    limiter: Limiter | None = None,
) -> Starlette:
    """The gateway app for ``config``. ``config_path`` is what reloads read again.

    ``keeper`` records every request; by default one is opened on the configured store (its
    migrations run here, so an unreachable database fails now, with a clear StoreError).

    ``freeze_startup`` (for the process that serves the app) moves what exists once the app has
    started out of the garbage collector's reach (``gc.freeze``): the modules, the config, the
    runtime, the models' tables. A full collection then walks only what was made since, and
    pauses every thread for ~2 ms instead of ~25-40 ms. Frozen objects are still freed when
    their last reference goes; only cycles among them are not (the first runtime's, after a
    reload: once)."""
    pm = make_plugin_manager()
    registry = registry or ProviderRegistry(pm)
    scanners = ScannerRegistry(pm)
    keeper = keeper or RecordKeeper.open(config)
    keyring = open_keyring(keeper.store)
    limiter = limiter or Limiter()  # its counts outlive reloads, like the keyring
    integrity = IntegrityLog()  # model-integrity checks, kept across reloads likewise
    holder = RuntimeHolder(build_runtime(config, registry, env=env, scanners=scanners,
                                         keyring=keyring, limiter=limiter,
                                         integrity=integrity), registry,
                           drain_timeout_s=config.server.drain_timeout_s, env=env,
                           scanners=scanners)
    metrics = GatewayMetrics(lambda: holder.current.deployments,
                             lambda: holder.current.in_flight, keeper.recorder.stats)
    keeper.observers.append(metrics.observe)
    resources = ResourceSampler()
    metrics.registry.register(resources)
    metrics.registry.register(LimitMetrics(limiter.stats))
    metrics.registry.register(integrity)
    gc_pauses = GcPauses()
    metrics.registry.register(gc_pauses)
    if keeper.tracer is not None:
        metrics.registry.register(keeper.tracer)
    openai_api = OpenAIApi(holder, config.server.max_body_bytes, on_finish=keeper.finish)
    admin_api = AdminApi(holder, config_path)
    query_api = QueryApi(holder, keeper.store, lambda: list(resources.samples))
    keys_api = KeysApi(holder, keyring)
    aggregates: list[SummaryApi | FindingsApi | BudgetsApi] = [
        SummaryApi(holder, keeper.store), FindingsApi(holder, keeper.store),
        BudgetsApi(holder, keeper.store, limiter.stats)]
    sessions = SessionSecrets()  # the dashboard's; one per process, like the keyring
    dashboard = Dashboard(holder, keeper.store, sessions)
    metrics.registry.register(dashboard.hub)

    async def healthz(request: Request) -> Response:
        return JSON({"status": "ok"})

    async def readyz(request: Request) -> Response:
        rt = holder.current
        if not rt.config.models:
            return JSON({"status": "not ready", "reason": "no models configured"}, status_code=503)
        return JSON({"status": "ready", "generation": holder.generation,
                     "models": len(rt.config.models)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await keeper.start()
        if keyring is not None:
            await keyring.start()
        resources.start()
        await dashboard.start()
        try:
            await holder.current.start()
        except BaseException:
            await dashboard.close()
            await resources.stop()
            if keyring is not None:
                await keyring.close()
            await keeper.close()
            raise
        holder.current.health.start()
        if freeze_startup:
            gc.collect()  # what starting left behind is freed, not frozen
            gc.freeze()
        gc_pauses.start()  # the pauses while serving
        loop = asyncio.get_running_loop()
        if handle_sighup:
            def on_sighup() -> None:
                task = loop.create_task(_reload_logged(holder, config_path))
                app.state.reloads.add(task)
                task.add_done_callback(app.state.reloads.discard)
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        try:
            yield
        finally:
            if handle_sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            await dashboard.close()
            await holder.close()
            await limiter.aclose()
            await resources.stop()
            gc_pauses.stop()
            if keyring is not None:
                await keyring.close()
            await keeper.close()

    app = Starlette(
        routes=[
            *openai_api.routes(),
            *admin_api.routes(),
            *query_api.routes(),
            *keys_api.routes(),
            *(route for api in aggregates for route in api.routes()),
            *dashboard.routes(),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint(holder, metrics.registry), methods=["GET"]),
        ],
        exception_handlers={
            WardenError: handle_warden_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        middleware=[Middleware(SessionCookies, holder=holder, secrets=sessions)],
        lifespan=lifespan,
    )
    app.state.holder = holder
    # With server.metrics.port, /metrics lives on an app of its own, served on that port.
    app.state.metrics_app = Starlette(routes=[Route(
        "/metrics", metrics_endpoint(holder, metrics.registry, own_port=True), methods=["GET"])])
    app.state.keeper = keeper
    app.state.limiter = limiter
    app.state.keyring = keyring
    app.state.dashboard = dashboard
    app.state.reloads = set()
    return app


async def _reload_logged(holder: RuntimeHolder, path: Path | None) -> None:
    try:
        await reload_from_file(holder, path)  # never forced: see reload_from_file
    except WardenError as exc:
        log.error("SIGHUP reload failed: %s", exc.message)
    except Exception:  # a bug, not a bad file: the running config stays, and the log says so
        log.exception("SIGHUP reload failed; the running config stays")


def open_keyring(store: Store) -> Keyring | None:
    """The keyring of the API keys kept in ``store``, loaded now; None when it keeps none."""
    if store.keys is None:
        return None
    keyring = Keyring(store.keys)
    keyring.load()
    return keyring
