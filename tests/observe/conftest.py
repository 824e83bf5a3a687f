"""Fixtures of the gateway-level record tests: the store they write to, on SQLite and on
PostgreSQL, and a private PostgreSQL server that a fault test may kill.

The ``postgresql`` variants use the server of WARDEN_TEST_POSTGRES_URL, each test in a fresh
schema dropped after it; without the variable they skip, and with it set but the server
unreachable they fail: CI must never pass by skipping them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import postgres_url_or_skip
from tests.observe.pgserver import PostgresServer, postgres_bindir
from warden.testing.postgres import fresh_schema


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """WARDEN_TEST_POSTGRES_URL, checked once to accept connections."""
    return postgres_url_or_skip()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store/warden.db"
    else:
        with fresh_schema(request.getfixturevalue("postgres_url"), "test") as url:
            yield url


@pytest.fixture
def postgres_server(tmp_path: Path) -> Iterator[PostgresServer]:
    """A private PostgreSQL server, started; stopped and removed after the test."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
                    "apt-get install postgresql, or put its bin folder on the PATH")
    server = PostgresServer(bindir, tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.close()
