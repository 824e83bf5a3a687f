"""Schema migrations: ordered functions ``mNNN_name(conn)``, each applied once and recorded.

``migrate()`` runs at every start. It takes a lock (``BEGIN IMMEDIATE`` in SQLite, an advisory
lock in PostgreSQL) so that replicas starting together do not race, applies the migrations not
yet recorded in ``schema_migrations`` in order, and commits them together: a failure leaves the
database as it was. A database that records a migration this code does not know was written by
a newer Warden and is refused.

Each migration defines the tables it creates with its own frozen definitions, never with the
current ones in ``tables.py``, so that it does the same thing forever. To change the schema,
append ``m002_...`` below (and update ``tables.py``); never edit an applied migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from warden.store.base import StoreError
from warden.store.tables import schema_migrations

Migration = Callable[[sa.Connection], None]

# Any bigint would do: it only has to be the same for every Warden sharing the database.
_PG_LOCK_ID = 0x77617264656E  # "warden"


def m001_initial(conn: sa.Connection) -> None:
    """Requests, payloads, tags and feedback, with the indexes of the dashboard's queries."""
    md = sa.MetaData()
    json = sa.JSON().with_variant(JSONB(), "postgresql")

    def fk() -> sa.ForeignKey:
        return sa.ForeignKey("requests.request_id", ondelete="CASCADE")

    sa.Table(
        "requests", md,
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("trace_id", sa.String, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double, nullable=False),
        sa.Column("api", sa.String, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("latency_s", sa.Double, nullable=False),
        sa.Column("ttft_s", sa.Double),
        sa.Column("stream", sa.Boolean, nullable=False),
        *(sa.Column(name, sa.String) for name in (
            "deployment", "provider", "upstream_model", "model_version", "key_id", "team",
            "end_user", "session_id", "error_type")),
        sa.Column("error_message", sa.Text),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens_per_s", sa.Double),
        sa.Column("cost_usd", sa.Double),
        sa.Column("cache", sa.String, nullable=False),
        sa.Column("region", sa.String),
        *(sa.Column(name, json, nullable=False)
          for name in ("attempts", "findings", "tags", "metadata")),
        # Newest-first pages order by (started_at, request_id); each filter of the dashboard
        # has its own (column, started_at) index.
        sa.Index("ix_requests_started", "started_at", "request_id"),
        *(sa.Index(f"ix_requests_{col}_started", col, "started_at")
          for col in ("model", "deployment", "key_id", "team", "session_id", "status")),
    )
    sa.Table(
        "payloads", md,
        sa.Column("request_id", sa.String, fk(), primary_key=True),
        sa.Column("policy", sa.String, nullable=False),
        sa.Column("prompt", sa.Text),
        sa.Column("completion", sa.Text),
    )
    sa.Table(
        "request_tags", md,
        sa.Column("request_id", sa.String, fk(), primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
        sa.Index("ix_request_tags_key_value", "key", "value"),
    )
    sa.Table(
        "feedback", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String, fk(), nullable=False, index=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("score", sa.Double),
        sa.Column("label", sa.String),
        sa.Column("comment", sa.Text),
        sa.Column("source", sa.String, nullable=False),
    )
    md.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (m001_initial,)


def error_text(exc: sa.exc.SQLAlchemyError) -> str:
    """The database's own words for an error, on one line (SQLAlchemy adds SQL and a link)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(orig or exc).__name__


def applied_migrations(conn: sa.Connection) -> list[str]:
    """The names recorded in ``schema_migrations``, in the order they were applied."""
    rows = conn.execute(sa.select(schema_migrations.c.name).order_by(
        schema_migrations.c.applied_at, schema_migrations.c.name))
    return list(rows.scalars())


def migrate(engine: sa.Engine, where: str, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations the database lacks; returns their names (empty: it was up to date).

    ``where`` names the database in error messages. Raises StoreError when the database has a
    newer schema than ``migrations`` or a migration fails; connection errors propagate."""
    known = [m.__name__ for m in migrations]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_ID)))
        schema_migrations.create(conn, checkfirst=True)
        applied = applied_migrations(conn)
        unknown = [name for name in applied if name not in known]
        if unknown:
            conn.rollback()
            raise StoreError(
                f"the database at {where} has a newer schema than this Warden knows: it records "
                f"migration(s) {', '.join(unknown)} (this Warden knows up to {known[-1]}). "
                "Upgrade Warden, or point the store URL at another database."
            )
        done: list[str] = []
        for migration in migrations:
            name = migration.__name__
            if name in applied:
                continue
            try:
                migration(conn)
            except sa.exc.SQLAlchemyError as exc:
                conn.rollback()
                raise StoreError(
                    f"schema migration {name} failed on the database at {where}: {error_text(exc)}. "
                    "Nothing was changed; fix the database (or restore a backup) and restart."
                ) from exc
            conn.execute(sa.insert(schema_migrations).values(name=name, applied_at=time.time()))
            done.append(name)
        conn.commit()
    return done
