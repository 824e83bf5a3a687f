"""The ``store`` fixture: every store test runs on SQLite in tmp_path and, when
WARDEN_TEST_POSTGRES_URL is set, on PostgreSQL too, each test in a fresh schema dropped after it.
A set but unreachable PostgreSQL fails the tests: CI must never pass by skipping them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from warden.store import SqlStore, open_store
from warden.store.sql import engine_url

POSTGRES_URL = os.environ.get("WARDEN_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


def _postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema in the test database; yields a store URL whose search_path is that schema."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(engine_url(url))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            yield (sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
                   .render_as_string(hide_password=False))
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/data/warden.db"
    else:
        yield from _postgres_schema(POSTGRES_URL)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """An open, migrated, empty store, closed after the test."""
    opened = open_store(store_url)
    assert isinstance(opened, SqlStore)
    try:
        yield opened
    finally:
        opened.close()
