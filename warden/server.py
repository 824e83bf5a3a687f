"""Running the gateway: bind checks, the uvicorn server, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ipaddress
import json
import logging
import signal
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Literal

import uvicorn
from starlette.types import ASGIApp as ASGIApplication

from warden.api.app import create_app
from warden.config import Config
from warden.errors import ConfigError
from warden.listener import protocol_class

log = logging.getLogger("warden")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: Config, host: str, allow_public: bool, stored_keys: bool = False) -> str:
    """Refuse a public bind without client keys (in the config, or ``stored_keys`` in the
    store); return a line that says how access works."""
    if config.keys or stored_keys:
        where = [f"{len(config.keys)} in the config"] if config.keys else []
        where += ["some in the store"] if stored_keys else []
        return f"client keys required on /v1 ({' and '.join(where)})."
    if is_loopback(host):
        return "no client keys configured: /v1 is open, so the gateway serves on loopback only."
    if allow_public or config.server.allow_public_without_keys:
        return f"WARNING: no client keys configured and bound to {host}: anyone who reaches it can use it."
    raise ConfigError(
        f"refusing to bind {host} with no client keys: anyone could use the gateway. "
        "Add keys: to warden.yaml (or create one with 'warden keys create'), bind 127.0.0.1, "
        "or pass --allow-public-without-keys."
    )


def uvicorn_config(app: ASGIApplication, host: str, port: int, drain_s: float,
                   log_level: str = "info", *, header_timeout_s: float = 10.0,
                   max_connections: int | None = None,
                   lifespan: Literal["on", "off"] = "on") -> uvicorn.Config:
    """uvicorn's settings for the gateway, its HTTP protocol bounded (``warden.listener``)."""
    fast = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    return uvicorn.Config(
        app, host=host, port=port,
        loop="uvloop" if fast else "asyncio",
        http=protocol_class(fast_http, header_timeout_s, max_connections),
        lifespan=lifespan, access_log=False, server_header=False, log_level=log_level,
        timeout_graceful_shutdown=int(max(1, drain_s)), timeout_keep_alive=30,
        backlog=4096,
    )


def serve(config: Config, *, config_path: Path | None, host: str | None, port: int | None,
          allow_public: bool = False, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; SIGHUP reloads the config file."""
    host = host or config.server.host
    port = config.server.port if port is None else port
    app = create_app(config, config_path=config_path, handle_sighup=True, freeze_startup=True)
    keyring = app.state.keyring
    access = check_bind(config, host, allow_public, keyring is not None and keyring.has_keys)
    settings = config.server
    server = uvicorn.Server(uvicorn_config(
        app, host, port, settings.drain_timeout_s, log_level,
        header_timeout_s=settings.header_timeout_s, max_connections=settings.max_connections))
    side: uvicorn.Server | None = None
    if settings.metrics.port is not None:
        side = _SideServer(uvicorn_config(
            app.state.metrics_app, settings.metrics.host, settings.metrics.port, 1, log_level,
            header_timeout_s=settings.header_timeout_s, max_connections=64, lifespan="off"))
    shown = f"[{host}]" if ":" in host else host
    print(f"warden: listening on http://{shown}:{port}  (OpenAI API at http://{shown}:{port}/v1)",
          flush=True)
    print(f"warden: models: {', '.join(m.name for m in config.models) or 'none'}", flush=True)
    print(f"warden: {access}", flush=True)
    if side is not None:
        print(f"warden: metrics at http://{settings.metrics.host}:{settings.metrics.port}/metrics",
              flush=True)
    chat = next((m.name for m in config.models
                 if all(d.provider != "local-embedding" for d in m.deployments)), None)
    if chat is not None:
        print(usage_hint(f"http://{shown}:{port}", chat), flush=True)
    # uvicorn re-raises the stop signal after its graceful shutdown; by then the work is done,
    # so the signal is acknowledged and the process exits 0 like any clean stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    # A SIGHUP before the app has installed its reload handler must not kill the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if side is None:
        server.run()
    else:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(_serve_both(server, side))
    print("warden: stopped", flush=True)


class _SideServer(uvicorn.Server):
    """A second listener in the gateway's process: the main server owns the stop signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve_both(main: uvicorn.Server, side: uvicorn.Server) -> None:
    task = asyncio.create_task(side.serve())
    try:
        await main.serve()
    finally:
        side.should_exit = True
        await task


def usage_hint(url: str, model: str) -> str:
    """How to call the gateway, with curl and with the openai client."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    return (
        "warden: try it:\n"
        f"  curl {url}/v1/chat/completions -H 'content-type: application/json' -d '{body}'\n"
        f"  python -c \"from openai import OpenAI; c = OpenAI(base_url='{url}/v1', api_key='none'); "
        f"print(c.chat.completions.create(model='{model}', messages=[{{'role': 'user', "
        f"'content': 'Hello!'}}]).choices[0].message.content)\""
    )


def _stopped(signum: int, frame: FrameType | None) -> None:
    log.info("received %s after shutdown completed", signal.Signals(signum).name)
