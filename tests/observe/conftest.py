"""Fixtures of the gateway-level record tests: the store they write to, on SQLite and on
PostgreSQL, and a private PostgreSQL server that a fault test may kill.

The ``postgresql`` variants use the server of WARDEN_TEST_POSTGRES_URL, each test in a fresh
schema dropped after it; without the variable they skip, and with it set but the server
unreachable they fail: CI must never pass by skipping them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.observe.pgserver import PostgresServer, postgres_bindir
from warden.store.sql import engine_url
from warden.testing.postgres import fresh_schema


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """WARDEN_TEST_POSTGRES_URL, checked once to accept connections."""
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
