"""The admin API under /api: reload, deployment state (with the last model-integrity check of
each deployment that loads a model file), the running config (only what is marked safe to
show, see ``warden.visibility``);
and ``authorize``, the one check of who may call what under /api."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.access.roles import Action, Principal
from warden.api.responses import JSON, error_response
from warden.api.session import has_session, session_caller
from warden.config import Config, load_config
from warden.errors import ConfigError, InvalidRequest, PermissionDenied, WardenError
from warden.runtime import Runtime, RuntimeHolder
from warden.visibility import shown

log = logging.getLogger("warden.admin")

def config_view(holder: RuntimeHolder) -> dict[str, Any]:
    """The running config as ``/api/config`` shows it: each setting as its visibility mark
    allows (``warden.visibility``), a deployment's params by its provider's Params model."""
    registry = holder.registry

    def params_of(provider: str) -> type[BaseModel] | None:
        return registry.get(provider, "").Params if provider in registry.names() else None

    return shown(holder.current.config, params_of)


def authorize(holder: RuntimeHolder, request: Request, action: Action) -> Principal:
    """The key behind the request, if its role grants ``action`` (see warden.access.roles):
    the ``Authorization: Bearer`` key, or else the key of the dashboard session cookie
    (``warden.api.session``: a change with the cookie must come from this host's pages).

    401 without a valid key (missing, unknown or revoked) or session; 403 for a role that may
    not, for a cross-site change, and when no key could ever be valid (no admin key and no
    client key exist)."""
    auth = holder.current.authenticate
    if not auth.has_admin and auth.open:
        raise PermissionDenied(
            "No admin key is configured: set WARDEN_ADMIN_KEY or admin_key in warden.yaml "
            "(or create a key with 'warden keys create --role admin')."
        )
    who = session_caller(holder, request) if has_session(request) else auth.resolve(
        request.headers)
    who.require(action)
    return who


def authorize_admin(holder: RuntimeHolder, request: Request) -> Principal:
    """The key behind the request, if it is an admin's."""
    return authorize(holder, request, "administer")


class AdminApi:
    def __init__(self, holder: RuntimeHolder, config_path: Path | None) -> None:
        self._holder = holder
        self._config_path = config_path

    def routes(self) -> list[Route]:
        return [
            Route("/api/admin/reload", self.reload, methods=["POST"]),
            Route("/api/deployments", self.deployments, methods=["GET"]),
            Route("/api/config", self.config, methods=["GET"]),
        ]

    async def reload(self, request: Request) -> Response:
        try:
            authorize(self._holder, request, "operate")
            force = request.query_params.get("force", "").lower() in ("1", "true", "yes")
            result = await reload_from_file(self._holder, self._config_path, force=force)
        except WardenError as exc:
            return error_response(exc)
        return JSON(result)

    async def deployments(self, request: Request) -> Response:
        try:
            authorize(self._holder, request, "read")
        except WardenError as exc:
            return error_response(exc)
        rt = self._holder.current
        data = []
        for router in rt.dispatcher.routers.values():
            for d in router.deployments:
                data.append({
                    "model": d.model, "id": d.id, "provider": d.config.provider,
                    "upstream_model": d.upstream_model, "breaker": d.breaker.state.value,
                    "breaker_opened": d.breaker.opened_count, "healthy": d.healthy,
                    "in_flight": d.in_flight, "requests": d.requests, "failures": d.failures,
                    "latency_ewma_s": d.ewma_s, "last_error": d.last_error,
                    "integrity": (o.to_json() if (o := rt.integrity.last(d.model, d.id))
                                  else None),
                })
        return JSON({"generation": self._holder.generation, "data": data})

    async def config(self, request: Request) -> Response:
        try:
            authorize(self._holder, request, "read")
        except WardenError as exc:
            return error_response(exc)
        return JSON(config_view(self._holder))


async def reload_from_file(holder: RuntimeHolder, path: Path | None,
                           force: bool = False) -> dict[str, Any]:
    """Read, validate and swap in the config file; the old runtime keeps serving on failure.

    The file is read and parsed in a worker thread, so a slow or hostile file never stalls the
    requests being served. A file that would remove every model, every client key or the admin
    key is refused unless ``force``: that is what a truncated or half-written file looks like,
    and swapping it in would answer every request with 401 or 404."""
    if path is None:
        raise InvalidRequest("The gateway was started without a config file; nothing to reload. "
                             "Start it with --config FILE.", code="no_config_file")
    try:
        config = await asyncio.to_thread(load_config, path)
        if not force:
            refuse_emptying(holder.current, config)
        runtime = await holder.swap(config)
    except ConfigError as exc:
        log.error("reload refused, the running config stays: %s", exc)
        raise InvalidRequest(f"Reload refused; the running config stays. {exc}",
                             code="invalid_config") from None
    except EmptyingReload as exc:
        log.error("reload refused, the running config stays: %s", exc.message)
        raise
    except WardenError as exc:
        log.error("reload refused, a deployment could not start: %s", exc.message)
        raise InvalidRequest(f"Reload refused; the running config stays. {exc.message}",
                             code="deployment_start_failed") from None
    log.info("reloaded %s: generation %d, %d model(s)%s", path, holder.generation,
             len(runtime.config.models), " (forced)" if force else "")
    return {"status": "reloaded", "generation": holder.generation,
            "models": [m.name for m in runtime.config.models]}


class EmptyingReload(InvalidRequest):
    """A reload that would remove every model, every client key or the admin key."""


def refuse_emptying(running: Runtime, new: Config) -> None:
    """EmptyingReload when ``new`` drops all of something the running config has: its models,
    its client keys, its admin key (unless WARDEN_ADMIN_KEY gives it)."""
    old = running.config
    lost = []
    if old.models and not new.models:
        lost.append(f"every model ({len(old.models)} now, none in the file)")
    if old.keys and not new.keys:
        lost.append(f"every client key ({len(old.keys)} now, none in the file)")
    if old.admin_key and not new.admin_key and running.admin_key == old.admin_key:
        lost.append("the admin key")
    if lost:
        raise EmptyingReload(
            f"Reload refused; the running config stays. The file would remove {' and '.join(lost)}"
            ": is it truncated or half-written? If that is what you mean, reload with "
            "POST /api/admin/reload?force=true (SIGHUP never forces), or restart the gateway.",
            code="reload_empties_config")
