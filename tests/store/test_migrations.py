"""Migrations run once, in order, atomically; a newer or unreachable database is refused with a
message that says what to do."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.store.factory import BASE, COLUMNS_BEFORE_M005, make_record, rows_before_m005
from warden.observe.record import Record
from warden.store import RequestFilter, SqlStore, StatsQuery, StoreError, open_store
from warden.store.migrations import MIGRATIONS, applied_migrations, m001_initial, migrate
from warden.store.sql import engine_url
from warden.store.tables import metadata, request_hours, request_tags, requests, schema_migrations

KNOWN = [m.__name__ for m in MIGRATIONS]


def recorded(store: SqlStore) -> list[tuple[str, float]]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(schema_migrations))]


def test_migrations_are_recorded_once(store_url: str) -> None:
    first = open_store(store_url)
    assert isinstance(first, SqlStore)
    try:
        rows = recorded(first)
        assert [name for name, _ in rows] == KNOWN
        assert migrate(first.engine, "test") == []  # a re-run does nothing
    finally:
        first.close()
    again = open_store(store_url)
    assert isinstance(again, SqlStore)
    try:
        assert recorded(again) == rows
    finally:
        again.close()


def test_tables_describe_the_migrated_schema(store: SqlStore) -> None:
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name: c.nullable for c in table.columns}, table.name
    assert set(requests.c.keys()) == {f.name for f in dataclasses.fields(Record)}
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("requests")}
    assert {("started_at", "request_id"), ("model", "started_at"), ("key_id", "started_at"),
            ("end_user", "started_at"), ("session_id", "started_at"),
            ("status", "started_at")} <= indexed
    assert ("key", "value", "started_at", "request_id") in {
        tuple(ix["column_names"]) for ix in inspector.get_indexes("request_tags")}


def test_a_newer_schema_is_refused(store: SqlStore, store_url: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.insert(schema_migrations).values(name="m999_from_the_future", applied_at=1.0))
    with pytest.raises(StoreError, match=r"newer schema.*m999_from_the_future.*Upgrade Warden") as caught:
        open_store(store_url)
    assert caught.value.status == 503


def test_a_failed_migration_changes_nothing(store_url: str) -> None:
    def m002_broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        conn.exec_driver_sql("SELECT no_such_column FROM half_done")

    url = engine_url(store_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True)
    engine = sa.create_engine(url)
    try:
        with pytest.raises(StoreError, match=r"migration m002_broken failed.*Nothing was changed"):
            migrate(engine, "test", (m001_initial, m002_broken))
        assert sa.inspect(engine).get_table_names() == []
        assert migrate(engine, "test", (m001_initial,)) == ["m001_initial"]
        with engine.connect() as conn:
            assert applied_migrations(conn) == ["m001_initial"]
    finally:
        engine.dispose()


def test_replicas_starting_together_migrate_once(store_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(open_store, store_url) for _ in range(4)]
        wait(futures)
    opened = [f.result() for f in futures if f.exception() is None]
    try:
        assert [f.exception() for f in futures] == [None] * 4
        first = opened[0]
        assert isinstance(first, SqlStore)
        assert [name for name, _ in recorded(first)] == KNOWN
    finally:
        for s in opened:
            s.close()


def test_unreachable_postgres_says_what_to_check() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://warden:s3cret@127.0.0.1:1/warden")
    message = str(caught.value)
    assert "cannot reach PostgreSQL at postgresql://warden:***@127.0.0.1:1/warden" in message
    assert "check the URL and that the server runs" in message
    assert "s3cret" not in message
    assert caught.value.status == 503 and caught.value.type == "service_unavailable"


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a/b/warden.db")
    store.close()
    assert (tmp_path / "a" / "b" / "warden.db").is_file()


def test_an_unusable_sqlite_path_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder"):
        open_store(f"sqlite:///{tmp_path}/file/warden.db")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match=r"cannot reach the SQLite database.*writable"):
        open_store(f"sqlite:///{tmp_path}/dir.db")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite://", "sqlite:///:memory:", "not a url"])
def test_unsupported_store_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match=r"sqlite:///path/to/warden\.db"):
        open_store(url)


def test_postgresql_urls_use_psycopg_3() -> None:
    assert engine_url("postgresql://u@h:5432/db").drivername == "postgresql+psycopg"
    assert engine_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/warden.db")
    assert isinstance(store, SqlStore)
    try:
        with store.engine.connect() as conn:
            pragmas = [conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                       for name in ("journal_mode", "foreign_keys", "busy_timeout")]
        assert pragmas == ["wal", 1, 10_000]
    finally:
        store.close()


def test_records_stored_before_m002_get_tag_times_and_hour_versions(store_url: str) -> None:
    url = engine_url(store_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True)
    engine = sa.create_engine(url)
    records = [make_record(i, started_at=BASE + i * 1000, tags={"env": ("prod", "dev")[i % 2]})
               for i in range(10)]
    try:
        migrate(engine, "test", (m001_initial,))
        plain = sa.table("requests", *(sa.column(name) for name in COLUMNS_BEFORE_M005))
        tags = sa.table("request_tags", sa.column("request_id"), sa.column("key"), sa.column("value"))
        with engine.begin() as conn:  # as the m001 store wrote them
            conn.execute(sa.insert(plain), rows_before_m005(records))
            conn.execute(sa.insert(tags), [{"request_id": r.request_id, "key": "env",
                                            "value": r.tags["env"]} for r in records])
    finally:
        engine.dispose()
    store = open_store(store_url)
    assert isinstance(store, SqlStore)
    try:
        with store.engine.connect() as conn:
            times = dict(conn.execute(sa.select(request_tags.c.request_id, request_tags.c.started_at))
                         .all())
            hours = dict(conn.execute(sa.select(request_hours.c.hour, request_hours.c.version)).all())
        assert times == {r.request_id: r.started_at for r in records}
        assert hours == {math.floor(r.started_at / 3600): 1 for r in records}
        page = store.query(RequestFilter(tags={"env": "dev"}), limit=3)
        assert [r.request_id for r in page.records] == ["r00009", "r00007", "r00005"]
        assert sum(row.count for row in store.stats(StatsQuery(bucket_s=3600))) == 10
    finally:
        store.close()
