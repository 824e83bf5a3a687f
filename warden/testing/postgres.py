"""A fresh PostgreSQL schema for one test or benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from warden.store.sql import engine_url


@contextmanager
def fresh_schema(url: str, prefix: str) -> Iterator[str]:
    """Create schema ``<prefix>_<random>`` in the database of ``url``; yield a store URL whose
    search_path is that schema; drop it (and all in it) at the end."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
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
