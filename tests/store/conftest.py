"""The ``store`` fixture: every store test runs on SQLite in tmp_path and, when
WARDEN_TEST_POSTGRES_URL is set, on PostgreSQL too, each test in a fresh schema dropped after it.
A set but unreachable PostgreSQL fails the tests: CI must never pass by skipping them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from warden.store import SqlStore, open_store
from warden.testing.postgres import fresh_schema

POSTGRES_URL = os.environ.get("WARDEN_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/data/warden.db"
    else:
        with fresh_schema(POSTGRES_URL, "test") as url:
            yield url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """An open, migrated, empty store, closed after the test."""
    opened = open_store(store_url)
    assert isinstance(opened, SqlStore)
    try:
        yield opened
    finally:
        opened.close()
