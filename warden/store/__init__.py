"""Storage of records, payloads and feedback behind one interface (``Store``).

``open_store(url)`` opens (and migrates) the store a URL names:

    sqlite:///path/to/warden.db             the embedded default; the folder is created
    postgresql://user:pw@host:5432/db       PostgreSQL through psycopg 3 (pip install 'warden[postgres]')
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from warden.store.base import (
    Feedback,
    FindingCount,
    GroupBy,
    Page,
    RecordsRefused,
    RequestDetail,
    RequestFilter,
    StatsQuery,
    StatsRow,
    Store,
    StoreError,
    SummaryRow,
)
from warden.store.sql import SqlStore

__all__ = [
    "Feedback",
    "FindingCount",
    "GroupBy",
    "Page",
    "RecordsRefused",
    "RequestDetail",
    "RequestFilter",
    "SqlStore",
    "StatsQuery",
    "StatsRow",
    "Store",
    "StoreError",
    "SummaryRow",
    "open_store",
]


def open_store(url: str, cache_mib: float = 128) -> Store:
    """The store at ``url``, its schema migrated to this version, keeping at most ``cache_mib``
    of statistics between queries. Raises StoreError when the database cannot be reached, a
    migration fails, or the database's schema is newer."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"the store URL {url!r} is not a URL: use sqlite:///path/to/warden.db "
                         "or postgresql://user:password@host:5432/database") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the SQLite store {path}: {exc}; "
                             "choose a writable path in the store URL") from exc
    return SqlStore(url, cache_mib)
