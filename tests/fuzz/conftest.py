"""The fuzzed gateway, once per test module and per store backend: SQLite in a temporary folder,
and PostgreSQL in a fresh schema when WARDEN_TEST_POSTGRES_URL is set (skipped without it; a
failure, not a skip, when it is set but the server cannot be reached)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.fuzz.harness import Gate, gateway_config
from tests.helpers import GatewayThread, postgres_url_or_skip
from warden.config import parse_config
from warden.testing.hostile_upstream import HostileUpstream
from warden.testing.httpserver import ServerThread
from warden.testing.postgres import fresh_schema
from warden.testing.upstream import FakeOpenAIUpstream


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Before a failure is reported, let the gateway's thread finish logging its own error: on
    CPython 3.11 the AST converter keeps its recursion count per interpreter, so the traceback
    carets that both threads compute (with ast.parse) at once end in a SystemError that stops
    pytest."""
    if call.excinfo is not None and sys.version_info < (3, 12):
        time.sleep(0.5)
    yield


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gate(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Gate]:
    """A gateway on a store of each backend, with a fake and a hostile upstream."""
    folder = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "sqlite":
        with _gate(f"sqlite:///{folder}/warden.db", folder, "sqlite") as made:
            yield made
    else:
        with fresh_schema(postgres_url_or_skip(), "fuzz") as url, _gate(url, folder, "postgresql") as made:
            yield made


@contextmanager
def _gate(store_url: str, folder: Path, backend: str) -> Iterator[Gate]:
    echo = FakeOpenAIUpstream(record=False)
    hostile = HostileUpstream()
    with ServerThread(echo.http), ServerThread(hostile.http):
        config = gateway_config(store_url, folder / "data", echo.base_url, hostile.base_url)
        path = folder / "warden.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        with GatewayThread(parse_config(config, env={}), config_path=path) as gw:
            made = Gate(gw, store_url, hostile, backend, path)
            try:
                yield made
            finally:
                made.close()
