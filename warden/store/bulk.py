"""A batch of records into the tables, straight through the database driver.

The recorder's writer thread shares the gateway's CPU, and whatever it runs in Python holds the
GIL. SQLAlchemy's executemany builds, processes and binds a dict of parameters per row in Python;
here each row is one tuple (``warden.store.rows``) handed to the driver, which binds it in C:
``sqlite3``'s executemany, and PostgreSQL's COPY through psycopg. The statements run on the
SQLAlchemy connection's own driver connection, inside its transaction, so that a batch is still
all or nothing.

The semantics are ``Store.write``'s: a record already stored is left as it is, and so is its
payload; tags and guard findings go with records written now. The version of the hour of
every record written now is bumped in ``request_hours`` (``warden.store.rollup``), once per
hour, in hour order (so that writers bumping the same hours take their row locks in the same
order).

In PostgreSQL a batch is copied straight into ``requests`` (``_insert_postgres``), with no look-up
first; tags and payloads follow with COPY too, and none of the three tables checks a foreign key
row by row (m002). Findings, on few records, keep theirs (m004).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from warden.observe.record import Payload, Record
from warden.store.base import RecordsRefused
from warden.store.rollup import HOUR
from warden.store.rows import (
    FINDING_COLUMNS,
    PAYLOAD_COLUMNS,
    REQUEST_COLUMNS,
    TAG_COLUMNS,
    finding_values,
    payload_values,
    record_values,
    tag_values,
)

_SQLITE_IN_CHUNK = 500  # within every SQLite's limit of parameters per statement
_STAGE = "warden_incoming_requests"  # per connection, in pg_temp; emptied at every commit
_UNIQUE_VIOLATION = "23505"
_STAGED = "warden.staging"  # key of the connection's info dict: the staging table exists


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _insert(table: str, names: Sequence[str], marker: str) -> str:
    return (f"INSERT INTO {table} ({_columns(names)}) VALUES "
            f"({', '.join([marker] * len(names))}) ON CONFLICT DO NOTHING")


_SQLITE_REQUESTS = _insert("requests", REQUEST_COLUMNS, "?")
_SQLITE_TAGS = _insert("request_tags", TAG_COLUMNS, "?")
_SQLITE_FINDINGS = _insert("request_findings", FINDING_COLUMNS, "?")
_SQLITE_PAYLOADS = _insert("payloads", PAYLOAD_COLUMNS, "?")
_PG_PAYLOADS = _insert("payloads", PAYLOAD_COLUMNS, "%s")
_SQLITE_BUMP = ("INSERT INTO request_hours (hour, version) VALUES (?, 1) "
                "ON CONFLICT (hour) DO UPDATE SET version = version + 1")
_PG_BUMP = ("INSERT INTO request_hours (hour, version) SELECT unnest(%s::bigint[]), 1 "
            "ON CONFLICT (hour) DO UPDATE SET version = request_hours.version + 1")


def _hours(records: Iterable[Record]) -> list[int]:
    # floor(started_at / 3600), as the SQL of warden.store.rollup and migrations computes it.
    return sorted({math.floor(r.started_at / HOUR) for r in records})


def write(conn: sa.Connection, batch: dict[str, Record], payloads: list[Payload]) -> None:
    """Write ``batch`` (records by request id, no duplicates) and ``payloads`` in the
    transaction of ``conn``. Driver errors are raised as SQLAlchemy's DBAPIError."""
    if conn.dialect.name == "postgresql":
        _write_postgres(conn, batch, payloads)
    else:
        _write_sqlite(conn, batch, payloads)


@contextmanager
def _driver_errors(conn: sa.Connection, what: str) -> Iterator[Any]:
    """The driver connection of ``conn``; its errors as SQLAlchemy's, as if SQLAlchemy had run
    the statements (a lost connection is invalidated, so that the pool does not hand it out)."""
    fairy = conn.connection
    raw = fairy.driver_connection
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield raw
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, fairy.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(what, None, exc, dbapi.Error,
                                         connection_invalidated=lost, dialect=conn.dialect) from exc


def _write_sqlite(conn: sa.Connection, batch: dict[str, Record], payloads: list[Payload]) -> None:
    ids = list(batch)
    with _driver_errors(conn, "INSERT INTO requests ...") as raw:
        cur = raw.cursor()
        try:
            stored = stored_sqlite(cur, ids)
            new = [r for r in batch.values() if r.request_id not in stored]
            if new:
                cur.executemany(_SQLITE_REQUESTS, [record_values(r) for r in new])
                cur.executemany(_SQLITE_TAGS, [t for r in new for t in tag_values(r)])
                found = [f for r in new if r.findings for f in finding_values(r)]
                if found:
                    cur.executemany(_SQLITE_FINDINGS, found)
                cur.executemany(_SQLITE_BUMP, [(hour,) for hour in _hours(new)])
            # A payload of a replayed record is skipped: it may have been erased since.
            kept = [payload_values(p) for p in payloads if p.request_id not in stored]
            if kept:
                cur.executemany(_SQLITE_PAYLOADS, kept)
        finally:
            cur.close()


def stored_sqlite(cur: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` are stored already."""
    stored: set[str] = set()
    for start in range(0, len(ids), _SQLITE_IN_CHUNK):
        chunk = ids[start:start + _SQLITE_IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        stored.update(row[0] for row in cur.execute(
            f"SELECT request_id FROM requests WHERE request_id IN ({marks})", chunk))
    return stored


def _write_postgres(conn: sa.Connection, batch: dict[str, Record], payloads: list[Payload]) -> None:
    info = conn.connection.info
    with _driver_errors(conn, "COPY requests ...") as raw:
        try:
            with raw.cursor() as cur:
                inserted = _insert_postgres(cur, list(batch.values()), info)
                new = [r for r in batch.values() if r.request_id in inserted]
                if new:
                    cur.execute(_PG_BUMP, (_hours(new),))
                _copy(cur, "request_tags", TAG_COLUMNS, [t for r in new for t in tag_values(r)])
                _copy(cur, "request_findings", FINDING_COLUMNS,
                      [f for r in new if r.findings for f in finding_values(r)])
                # The payloads of the records inserted now; those of records stored already are
                # left out (a payload may have been erased since).
                _copy(cur, "payloads", PAYLOAD_COLUMNS, [payload_values(p)
                                                         for p in payloads if p.request_id in inserted])
                others = [p for p in payloads if p.request_id not in batch]
                if others:
                    _other_payloads(cur, others)
        except BaseException:
            info.pop(_STAGED, None)  # created in this transaction, which is rolled back
            raise


def _other_payloads(cur: Any, payloads: list[Payload]) -> None:
    """Payloads whose record is not in the batch: it must be stored (PostgreSQL's payloads have
    no foreign key since m002: the check is here)."""
    known = stored_postgres(cur, [p.request_id for p in payloads])
    missing = sorted({p.request_id for p in payloads} - known)
    if missing:
        raise RecordsRefused(f"a payload came without its record, which is not stored either (request "
                         f"{', '.join(missing[:5])}): write each payload with its record")
    cur.executemany(_PG_PAYLOADS, [payload_values(p) for p in payloads])


def stored_postgres(cur: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` are stored already."""
    cur.execute("SELECT request_id FROM requests WHERE request_id = ANY(%s)", (ids,))
    return {row[0] for row in cur.fetchall()}


def _copy(cur: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = list(rows)
    if rows:
        with cur.copy(f"COPY {table} ({_columns(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _insert_postgres(cur: Any, records: list[Record], info: dict[Any, Any]) -> set[str]:
    """Insert the records not stored yet; the ids of those inserted.

    Most batches hold only new records: they are copied straight into ``requests``, and the
    primary key's unique index is the check. When it finds one stored already (a replayed spool,
    or another writer storing it meanwhile), the batch goes through a temporary table instead,
    and ON CONFLICT DO NOTHING skips the records stored already."""
    if not records:
        return set()
    values = [record_values(r) for r in records]
    cur.execute("SAVEPOINT warden_copy")
    try:
        _copy(cur, "requests", REQUEST_COLUMNS, values)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        cur.execute("ROLLBACK TO SAVEPOINT warden_copy")
        if not info.get(_STAGED):
            cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
                        "(LIKE requests) ON COMMIT DELETE ROWS")
            info[_STAGED] = True
        _copy(cur, f"pg_temp.{_STAGE}", REQUEST_COLUMNS, values)
        columns = _columns(REQUEST_COLUMNS)
        cur.execute(f"INSERT INTO requests ({columns}) SELECT {columns} FROM pg_temp.{_STAGE} "
                    "ON CONFLICT DO NOTHING RETURNING request_id")
        return {row[0] for row in cur.fetchall()}
    cur.execute("RELEASE SAVEPOINT warden_copy")
    return {r.request_id for r in records}
