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


# The hour of a started_at, as ``warden.store.rollup.unit_index`` and ``warden.store.bulk`` compute it.
_SQLITE_HOUR = "CAST({}.started_at / 3600 AS INTEGER)"
_PG_HOUR = "floor(started_at / 3600)::bigint"
# Whoever deletes or updates requests rows: bump the versions of their hours; delete the tags
# and payloads of deleted records (what their foreign keys did before m002).
_PG_CHANGED = f"""
CREATE FUNCTION warden_requests_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bump CONSTANT text := 'INSERT INTO ' || quote_ident(TG_TABLE_SCHEMA) || '.request_hours '
        '(hour, version) SELECT DISTINCT {_PG_HOUR}, 1 FROM @rows@ ON CONFLICT (hour) '
        'DO UPDATE SET version = request_hours.version + 1';
BEGIN
    EXECUTE replace(bump, '@rows@', 'old_rows');
    IF TG_OP = 'UPDATE' THEN
        EXECUTE replace(bump, '@rows@', 'new_rows');
    ELSE
        EXECUTE 'DELETE FROM ' || quote_ident(TG_TABLE_SCHEMA) || '.request_tags t USING old_rows o '
                'WHERE t.started_at = o.started_at AND t.request_id = o.request_id';
        EXECUTE 'DELETE FROM ' || quote_ident(TG_TABLE_SCHEMA) || '.payloads '
                'WHERE request_id IN (SELECT request_id FROM old_rows)';
    END IF;
    RETURN NULL;
END $$
"""


def m002_query_indexes(conn: sa.Connection) -> None:
    """What the dashboard's queries need at a million records: an index for the user filter;
    ``started_at`` on tags, indexed after the tag; and ``request_hours``, a version per hour of
    ``started_at``, bumped whenever a row of ``requests`` in that hour is inserted (by
    ``Store.write``, once per hour and batch), deleted or updated (by triggers, whoever does
    it). The statistics' hour blocks (``warden.store.rollup``) are valid while their hour's
    version is unchanged. Copies every tag row: about a minute per million records."""
    # Partial: many records have no end user, and only a filter on one reads this index.
    conn.exec_driver_sql("CREATE INDEX ix_requests_end_user_started ON requests (end_user, started_at) "
                         "WHERE end_user IS NOT NULL")
    # The status index, partial too: a page of "ok" records is the newest records, and an entry
    # for each of them cost every write (filters.py repeats the condition for SQLite's planner).
    conn.exec_driver_sql("DROP INDEX ix_requests_status_started")
    conn.exec_driver_sql("CREATE INDEX ix_requests_status_started ON requests (status, started_at) "
                         "WHERE status <> 'ok'")
    # A tag filter reads its newest records straight off the tags' own index, in page order,
    # whether the tag is on most records or on a few: tags carry their record's started_at. And
    # they lose their foreign key, whose check of every tag row cost a third of a batch's time
    # in PostgreSQL: only Store.write adds tags, with their record; the triggers below delete
    # them with it. The table is built anew (no rewrite of every row in place, no bloat).
    # Their primary key starts with started_at too: a batch of new tags is appended at the end
    # of it, where (request_id, key) sent every tag to a random page of the index (request ids
    # are random), a page to read, dirty and write again for each.
    postgres = conn.dialect.name == "postgresql"
    columns = "request_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR NOT NULL"
    if postgres:  # the primary key comes after the rows
        conn.exec_driver_sql(f"CREATE TABLE request_tags_m002 ({columns}, "
                             "started_at DOUBLE PRECISION NOT NULL)")
    else:  # stored in primary key order, without a rowid: one b-tree less to write per tag
        conn.exec_driver_sql(f"CREATE TABLE request_tags_m002 ({columns}, started_at DOUBLE NOT NULL, "
                             "PRIMARY KEY (started_at, request_id, key)) WITHOUT ROWID")
    conn.exec_driver_sql("INSERT INTO request_tags_m002 (request_id, key, value, started_at) "
                         "SELECT t.request_id, t.key, t.value, r.started_at FROM request_tags t "
                         "JOIN requests r ON r.request_id = t.request_id")
    conn.exec_driver_sql("DROP TABLE request_tags")
    conn.exec_driver_sql("ALTER TABLE request_tags_m002 RENAME TO request_tags")
    if postgres:
        conn.exec_driver_sql("ALTER TABLE request_tags ADD PRIMARY KEY (started_at, request_id, key)")
        # Likewise the payloads' foreign key, in PostgreSQL (in SQLite, dropping it would copy
        # every payload, and its check costs little there): Store.write checks that a payload
        # without its record in the batch has it stored.
        for (name,) in conn.exec_driver_sql("SELECT conname FROM pg_constraint WHERE contype = 'f' "
                                            "AND conrelid = 'payloads'::regclass").all():
            conn.exec_driver_sql(f'ALTER TABLE payloads DROP CONSTRAINT "{name}"')
    conn.exec_driver_sql("CREATE INDEX ix_request_tags_key_value_started "
                         "ON request_tags (key, value, started_at, request_id)")
    hours = sa.Table(
        "request_hours", sa.MetaData(),
        sa.Column("hour", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    hours.create(conn)
    if postgres:
        conn.exec_driver_sql(_PG_CHANGED)
        for name, op, tables in (
            ("requests_deleted", "DELETE", "OLD TABLE AS old_rows"),
            ("requests_updated", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} AFTER {op} ON requests REFERENCING {tables} "
                "FOR EACH STATEMENT EXECUTE FUNCTION warden_requests_changed()")
        hour = _PG_HOUR
    else:
        def bump(row: str) -> str:
            return (f"INSERT INTO request_hours (hour, version) VALUES ({_SQLITE_HOUR.format(row)}, 1) "
                    "ON CONFLICT (hour) DO UPDATE SET version = version + 1;")

        conn.exec_driver_sql(f"CREATE TRIGGER requests_deleted AFTER DELETE ON requests BEGIN {bump('OLD')} "
                             "DELETE FROM request_tags WHERE started_at = OLD.started_at "
                             "AND request_id = OLD.request_id; END")
        conn.exec_driver_sql("CREATE TRIGGER requests_updated AFTER UPDATE ON requests "
                             f"BEGIN {bump('OLD')} {bump('NEW')} END")
        hour = _SQLITE_HOUR.format("requests")
    conn.exec_driver_sql(f"INSERT INTO request_hours (hour, version) "
                         f"SELECT DISTINCT {hour}, 1 FROM requests")


def m003_api_keys(conn: sa.Connection) -> None:
    """API keys, kept by the SHA-256 of their token (``warden.store.keys``)."""
    md = sa.MetaData()
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    sa.Table(
        "api_keys", md,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("token_sha256", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("team", sa.String),
        sa.Column("models", json),  # NULL: every model
        sa.Column("tags", json, nullable=False),
        sa.Column("payloads", sa.String),  # NULL: the store's payload policy
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double),
        sa.Column("last_used_at", sa.Double),
        sa.Index("ux_api_keys_token_sha256", "token_sha256", unique=True),
    )
    md.create_all(conn)


def m004_request_findings(conn: sa.Connection) -> None:
    """One row per guard finding, written with its record and deleted with it: the guardrails
    page counts findings per time, scanner and action, and lists the newest blocked or
    redacted requests, without reading every record's JSON. Copies the findings of the records
    stored so far (one read of the whole ``requests`` table)."""
    md = sa.MetaData()
    sa.Table("requests", md, sa.Column("request_id", sa.String, primary_key=True))  # for the FK
    findings = sa.Table(
        "request_findings", md,
        sa.Column("request_id", sa.String,
                  sa.ForeignKey("requests.request_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("started_at", sa.Double, nullable=False),
        *(sa.Column(name, sa.String, nullable=False)
          for name in ("scanner", "type", "action", "direction")),
        sa.Column("score", sa.Double),
        sa.Index("ix_request_findings_started", "started_at"),
        sa.Index("ix_request_findings_action_started", "action", "started_at"),
    )
    findings.create(conn)
    columns = "request_id, seq, started_at, scanner, type, action, direction, score"
    if conn.dialect.name == "postgresql":
        def field(name: str) -> str:
            return f"coalesce(j.value ->> '{name}', '')"

        conn.exec_driver_sql(
            f"INSERT INTO request_findings ({columns}) SELECT r.request_id, (j.n - 1)::int, "
            f"r.started_at, {field('scanner')}, {field('type')}, {field('action')}, "
            f"{field('where')}, (j.value ->> 'score')::double precision FROM requests r "
            "CROSS JOIN LATERAL jsonb_array_elements(r.findings) WITH ORDINALITY AS j(value, n) "
            "WHERE r.findings <> '[]'::jsonb")
    else:
        def field(name: str) -> str:
            return f"coalesce(json_extract(j.value, '$.{name}'), '')"

        conn.exec_driver_sql(
            f"INSERT INTO request_findings ({columns}) SELECT r.request_id, CAST(j.key AS INTEGER), "
            f"r.started_at, {field('scanner')}, {field('type')}, {field('action')}, "
            f"{field('where')}, json_extract(j.value, '$.score') FROM requests r, "
            "json_each(r.findings) j WHERE r.findings <> '[]'")


def m005_client_request_ids(conn: sa.Connection) -> None:
    """Records are keyed by an id of the gateway's own, unique per request; the client's
    ``x-request-id``, which clients may reuse, is kept as a label in ``client_request_id``,
    with an index for the filter on it (partial: many requests come without one). Records
    stored before keep their id, which was the client's when it sent one, and no label.
    ``truncated`` names the fields of a record that were cut or cleaned to fit the store (an
    empty list for the records stored before). Adds two columns without rewriting a row
    (PostgreSQL keeps a constant default in the catalog)."""
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql("ALTER TABLE requests ADD COLUMN client_request_id VARCHAR")
    json = "JSONB NOT NULL DEFAULT '[]'::jsonb" if postgres else "JSON NOT NULL DEFAULT '[]'"
    conn.exec_driver_sql(f"ALTER TABLE requests ADD COLUMN truncated {json}")
    conn.exec_driver_sql("CREATE INDEX ix_requests_client_request_id_started ON requests "
                         "(client_request_id, started_at) WHERE client_request_id IS NOT NULL")


MIGRATIONS: tuple[Migration, ...] = (m001_initial, m002_query_indexes, m003_api_keys,
                                     m004_request_findings, m005_client_request_ids)


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
