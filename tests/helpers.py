"""Running real servers on loopback for tests: the gateway and fake upstreams, each in a thread
with its own event loop, so synchronous clients (the official openai client) can drive them."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest
import sqlalchemy as sa
import uvicorn

from warden.api.app import create_app
from warden.config import Config, parse_config
from warden.server import uvicorn_config
from warden.store.sql import engine_url


class GatewayThread:
    """The real gateway app under uvicorn on 127.0.0.1 and a free port."""

    def __init__(self, config: Config | dict[str, Any], config_path: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        if isinstance(config, dict):
            config = parse_config(config, env=env or {})
        if not Path(config.server.data_dir).is_absolute():
            # Each gateway under test keeps its records in a folder of its own.
            self._data = tempfile.TemporaryDirectory(prefix="warden-test-")
            server = config.server.model_copy(update={"data_dir": self._data.name})
            config = config.model_copy(update={"server": server})
        try:
            self.app = create_app(config, config_path=config_path, env=env or {})
        except BaseException:
            if hasattr(self, "_data"):
                self._data.cleanup()
            raise
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", 0,
                                                    config.server.drain_timeout_s, "warning"))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: list[openai.OpenAI] = []

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        return self

    def client(self, api_key: str = "x", **options: Any) -> openai.OpenAI:
        """An official openai client for this gateway, closed when the gateway stops."""
        made = openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, **options)
        self._clients.append(made)
        return made

    def __exit__(self, *exc: object) -> None:
        for made in self._clients:
            made.close()
        self.server.should_exit = True
        self._thread.join(30)
        if hasattr(self, "_data"):
            self._data.cleanup()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the gateway's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def stored_ids(store_url: str, table: str = "requests", column: str = "request_id") -> list[str]:
    """The request ids in a table of the store at ``store_url``, read straight from the database
    (a repeated id would appear twice): the records' own ids, or with ``column`` set to
    ``client_request_id`` the clients' ``x-request-id`` labels."""
    if table not in ("requests", "payloads", "request_tags", "feedback"):
        raise ValueError(f"not a table of the store: {table}")
    if column not in ("request_id", "client_request_id"):
        raise ValueError(f"not an id column: {column}")
    engine = sa.create_engine(engine_url(store_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT {column} FROM {table}")).scalars())
    finally:
        engine.dispose()


def postgres_url_or_skip() -> str:
    """WARDEN_TEST_POSTGRES_URL, checked to accept connections: a skip when it is not set, a
    failure (never a skip) when it is set but the server cannot be reached."""
    url = os.environ.get("WARDEN_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("WARDEN_TEST_POSTGRES_URL is not set: set it to a PostgreSQL server's URL "
                    "(CI uses postgresql://postgres@127.0.0.1:5432/test) to run this test")
    engine = sa.create_engine(engine_url(url), connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.fail(f"WARDEN_TEST_POSTGRES_URL is set but PostgreSQL at "
                    f"{sa.make_url(url).render_as_string(hide_password=True)} cannot be reached "
                    f"({exc.orig}); start the server, or unset the variable to skip these tests")
    finally:
        engine.dispose()
    return url
