"""SqlStore: the Store on SQLAlchemy Core, for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode (readers never wait for the writer) with foreign keys on and a busy
timeout; writes of one process go one at a time through a lock and one connection of their own,
like datasette's single writer, so that they never wait on each other inside SQLite. PostgreSQL
is reached with psycopg 3 through a pool of connections that are checked before use, so that a
restarted server costs no request.

Batches of records go to the tables through the driver (``bulk``); pages are read by keyset
(``pages``); statistics over whole hours come from hour blocks kept in memory (``rollup``),
and so do the totals of long ranges (``summary``); guard findings have a table of their own
(``findings``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa

from warden.errors import InvalidRequest, NotFound
from warden.observe.bounds import clean_text
from warden.observe.record import Payload, Record
from warden.store import bulk, findings, pages, rows, stats
from warden.store.base import (
    MAX_PAGE,
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
from warden.store.keys import KeyStore
from warden.store.migrations import error_text, migrate
from warden.store.rollup import HourBlocks
from warden.store.summary import Spans
from warden.store.tables import feedback, requests
from warden.store.tables import payloads as payload_table

_BUSY_TIMEOUT_MS = 10_000
_PURGE_BATCH = 5_000
_CHECKPOINT_PAGES = 32 * 1024  # of 4 KiB
_WAL_KEPT_BYTES = 64 * 2**20  # the WAL file is cut back to this after a checkpoint


_PG_CONNECT: dict[str, Any] = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10,
                               "keepalives_interval": 5, "keepalives_count": 3,
                               "tcp_user_timeout": 30_000}


def engine_url(url: str) -> sa.URL:
    """The SQLAlchemy URL of a store URL: ``postgresql://`` means psycopg 3."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database file to WAL (once: the mode is kept in the file)."""
    # SQLite answers "locked" at once, without the busy handler, when another connection holds
    # the file while this one switches it, as replicas opening a new database together do.
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process in WAL
    finally:
        cursor.close()


def _on_sqlite_writer_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # A batch of records dirties pages all over the indexes (request ids are random). A
    # checkpoint (the WAL copied into the database, and fsync'd) every 128 MiB of WAL rather
    # than every 4 MiB copies a page that many batches wrote once: a fifth more records/s. (A
    # larger page cache would help too, but it is memory that grows with the store.)
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
    dbapi_connection.execute(f"PRAGMA journal_size_limit={_WAL_KEPT_BYTES}")


class SqlStore(Store):
    """The Store on one SQLite file or one PostgreSQL database; migrates it on opening."""

    def __init__(self, url: str, cache_mib: float = 128) -> None:
        parsed = engine_url(url)
        self.dialect = parsed.get_backend_name()
        self.where = sa.make_url(url).render_as_string(hide_password=True)  # as the user wrote it
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported store URL {self.where}: use sqlite:///path/to/warden.db "
                             "or postgresql://user:password@host:5432/database")
        if self.dialect == "sqlite" and parsed.database in (None, "", ":memory:"):
            raise StoreError("an in-memory SQLite store would lose every record on restart and "
                             "cannot be shared between threads: use sqlite:///path/to/warden.db")
        options: dict[str, Any] = {"json_serializer": rows.dumps}
        if self.dialect == "postgresql":
            options["pool_pre_ping"] = True
            # A server that vanishes without closing (a crash of its host, a partition) would
            # hold a query forever: TCP keepalives and a send timeout turn that into an error
            # within ~30 s, which the recorder answers by spooling.
            options["connect_args"] = {k: v for k, v in _PG_CONNECT.items()
                                       if k not in parsed.query}
        try:
            self.engine = sa.create_engine(parsed, **options)
        except ModuleNotFoundError as exc:
            raise StoreError(f"the driver for {self.where} is not installed ({exc.name}): "
                             "pip install 'warden[postgres]'") from exc
        self._writer = self.engine
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _on_sqlite_connect)
            # One connection of its own writes, like datasette's single writer: its page cache
            # holds what the last batches touched.
            self._writer = sa.create_engine(parsed, pool_size=1, max_overflow=0, **options)
            sa.event.listen(self._writer, "connect", _on_sqlite_connect)
            sa.event.listen(self._writer, "connect", _on_sqlite_writer_connect)
        # Serialises this process's SQLite writes; other processes wait on busy_timeout.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self._keys = KeyStore(self._read, self._write)
        # Half for the hour blocks, half for the merged ranges made of them; 8 bytes a value.
        values = int(cache_mib * 2**20 / 8 / 2)
        self._blocks = HourBlocks(max_values=values)
        self._spans = Spans(self._blocks, max_values=values)
        try:
            with self._errors("open"):
                migrate(self.engine, self.where)
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database errors as StoreErrors that say what failed and what to do."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            # No statement: the connection itself failed (SQLAlchemy wraps connect errors so).
            if not (exc.statement is None or exc.connection_invalidated
                    or isinstance(exc, sa.exc.InterfaceError)):
                raise StoreError(f"cannot {action} at {self.where}: {error_text(exc)}") from exc
            what = "PostgreSQL" if self.dialect == "postgresql" else "the SQLite database"
            hint = ("check the URL and that the server runs and accepts connections"
                    if self.dialect == "postgresql" else
                    "check that the folder exists and is writable, and that the disk is not full")
            raise StoreError(f"cannot {action}: cannot reach {what} at {self.where} "
                             f"({error_text(exc)}); {hint}") from exc
        except sa.exc.TimeoutError as exc:
            raise StoreError(f"cannot {action}: every connection to {self.where} is busy ({exc}); "
                             "the database is too slow for the load, or connections leak") from exc

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        """A connection whose statements all see one snapshot of the database."""
        with self._errors(action), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN")  # pysqlite would run each SELECT on its own
            try:
                yield conn
            finally:
                conn.rollback()

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed when the block ends without an error."""
        with self._errors(action), self._write_lock or nullcontext(), self._writer.begin() as conn:
            yield conn

    # -- the Store --------------------------------------------------------------------------

    @property
    def keys(self) -> KeyStore:
        return self._keys

    def write(self, records: list[Record], payloads: list[Payload]) -> None:
        batch = {r.request_id: r for r in reversed(records)}  # the first of duplicates wins
        if not batch and not payloads:
            return
        action = f"write a batch of {len(batch)} records"
        try:
            with self._write(action) as conn:
                bulk.write(conn, batch, payloads)
        except StoreError as exc:
            if isinstance(exc, RecordsRefused) or not refused(exc.__cause__):
                raise
            raise RecordsRefused(f"{exc.message}; the database refuses the data") from exc.__cause__
        except (ValueError, TypeError, OverflowError) as exc:
            # The driver cannot send a value (text that is not UTF-8, an integer past 64 bits).
            raise RecordsRefused(f"cannot {action} at {self.where}: {type(exc).__name__}: {exc}"
                                 ) from exc

    def get(self, request_id: str) -> RequestDetail | None:
        # Stored ids hold no NUL or lone surrogate (warden.observe.bounds), which PostgreSQL
        # could not even compare: an id with one is looked up as it was stored.
        request_id = clean_text(request_id)
        with self._read("read a request") as conn:
            row = conn.execute(sa.select(requests).where(requests.c.request_id == request_id)).first()
            if row is None:
                return None
            payload = conn.execute(
                sa.select(payload_table).where(payload_table.c.request_id == request_id)).first()
            notes = conn.execute(sa.select(feedback).where(feedback.c.request_id == request_id)
                                 .order_by(feedback.c.created_at, feedback.c.id)).all()
        return RequestDetail(
            record=rows.to_record(row),
            payload=None if payload is None else rows.to_payload(payload),
            feedback=[rows.to_feedback(n) for n in notes],
        )

    def query(self, where: RequestFilter, cursor: str | None = None, limit: int = 50) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be 1 to {MAX_PAGE}; got {limit}", param="limit")
        after = None if cursor is None else decode_cursor(cursor)
        with self._read("query requests") as conn:
            found, position = pages.read(conn, where, after, limit)
        return Page(records=found, next_cursor=None if position is None else encode_cursor(*position))

    def stats(self, query: StatsQuery) -> list[StatsRow]:
        with self._read("compute request statistics") as conn:
            return stats.compute(conn, query, self._blocks)

    def summary(self, where: RequestFilter, group_by: GroupBy | None = None,
                percentiles: bool = True) -> list[SummaryRow]:
        with self._read("summarize requests") as conn:
            return self._spans.summary(conn, where, group_by, percentiles)

    def finding_counts(self, where: RequestFilter, bucket_s: float) -> list[FindingCount]:
        if not (bucket_s > 0 and math.isfinite(bucket_s)):
            raise InvalidRequest(f"bucket_s must be a positive number; got {bucket_s}",
                                 param="bucket_s")
        with self._read("count guard findings") as conn:
            return findings.counts(conn, where, bucket_s)

    def flagged(self, where: RequestFilter, actions: Sequence[str],
                limit: int = 20) -> list[Record]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be 1 to {MAX_PAGE}; got {limit}", param="limit")
        with self._read("find guarded requests") as conn:
            return findings.flagged(conn, where, actions, limit)

    def add_feedback(
        self,
        request_id: str,
        score: float | None = None,
        label: str | None = None,
        comment: str | None = None,
        source: str = "api",
        at: float | None = None,
    ) -> int:
        if score is None and label is None and comment is None:
            raise InvalidRequest("feedback needs a score, a label or a comment", param="score")
        # Text from a client: kept as both backends can hold it (see get).
        request_id, source = clean_text(str(request_id)), clean_text(str(source))
        label = None if label is None else clean_text(str(label))
        comment = None if comment is None else clean_text(str(comment))
        with self._write("add feedback") as conn:
            known = conn.execute(sa.select(requests.c.request_id)
                                 .where(requests.c.request_id == request_id)).first()
            if known is None:
                raise NotFound(f"no stored request has id '{request_id}' (it may have been purged "
                               "by retention, or not yet written: retry in a second)")
            new_id = conn.execute(sa.insert(feedback).values(
                request_id=request_id, created_at=time.time() if at is None else at, score=score,
                label=label, comment=comment, source=source,
            ).returning(feedback.c.id)).scalar_one()  # RETURNING: SQLite 3.35 or later
        return int(new_id)

    def purge(self, before: float) -> int:
        deleted = 0
        # In batches, so that the writer (and SQLite readers' WAL) never waits on one huge delete.
        while True:
            batch = (sa.select(requests.c.request_id).where(requests.c.started_at < before)
                     .limit(_PURGE_BATCH).scalar_subquery())
            with self._write("purge old requests") as conn:
                # Payloads, tags and feedback go with their record (ON DELETE CASCADE).
                n = conn.execute(sa.delete(requests).where(requests.c.request_id.in_(batch))).rowcount
            deleted += n
            if n < _PURGE_BATCH:
                return deleted

    def close(self) -> None:
        self.engine.dispose()
        self._writer.dispose()


# SQLSTATE classes of an answer about the data itself: a data exception (a value out of its
# column's range, a character the column cannot hold), an integrity constraint, a program limit
# (an index entry too large). Other classes (connection, resources, locks, a missing table) say
# nothing against the data: the same batch may be written later.
_REFUSED_CLASSES = ("22", "23", "54")


def refused(exc: BaseException | None) -> bool:
    """Whether a database error refuses the data written, rather than failing the database."""
    if not isinstance(exc, sa.exc.DBAPIError) or exc.connection_invalidated:
        return False
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str):  # psycopg
        return state[:2] in _REFUSED_CLASSES
    # sqlite3 has no SQLSTATE: its DataError (text too big), IntegrityError (a foreign key), and
    # its ProgrammingError and InterfaceError of a value it cannot bind.
    return isinstance(exc, (sa.exc.DataError, sa.exc.IntegrityError)) or (
        isinstance(exc.orig, sqlite3.Error) and exc.statement is not None
        and isinstance(exc, (sa.exc.ProgrammingError, sa.exc.InterfaceError)))


def encode_cursor(started_at: float, request_id: str) -> str:
    """The opaque cursor after the record (started_at, request_id): base64url of a JSON pair."""
    raw = json.dumps([started_at, request_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (started_at, request_id) in a cursor; InvalidRequest when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, rid = json.loads(raw)
        if (isinstance(at, (int, float)) and not isinstance(at, bool) and isinstance(rid, str)
                and math.isfinite(at)):
            return float(at), clean_text(rid)
    except (binascii.Error, ValueError, TypeError):
        pass  # answered below, like any other malformed cursor
    raise InvalidRequest("the cursor is not valid: pass back the next_cursor of the previous page "
                         "unchanged, or none for the first page", param="cursor")
