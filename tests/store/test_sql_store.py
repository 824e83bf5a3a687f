"""The SqlStore keeps records, payloads and feedback, and finds them again, on every backend."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from tests.store.conftest import BACKENDS
from tests.store.factory import BASE, full_record, make_record
from warden.errors import InvalidRequest, NotFound
from warden.observe.bounds import bound_record
from warden.observe.record import Payload, Record
from warden.store import RecordsRefused, RequestFilter, SqlStore, StoreError, bulk, pages
from warden.store import sql as sql_module
from warden.store.sql import decode_cursor, encode_cursor


def count(store: SqlStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def ids(store: SqlStore, where: RequestFilter, limit: int = 1000) -> list[str]:
    return [r.request_id for r in store.query(where, limit=limit).records]


def test_round_trip_keeps_every_field(store: SqlStore) -> None:
    record, payload = full_record()
    assert all(getattr(record, f.name) != f.default for f in dataclasses.fields(Record)
               if f.default is not dataclasses.MISSING)
    store.write([record], [payload])
    got = store.get("req-full")
    assert got is not None
    assert got.record == record
    assert got.payload == payload
    assert got.feedback == []
    assert store.query(RequestFilter()).records == [record]


def test_unknown_request_is_none(store: SqlStore) -> None:
    assert store.get("nope") is None


def test_record_without_payload(store: SqlStore) -> None:
    store.write([make_record(1)], [])
    got = store.get("r00001")
    assert got is not None and got.payload is None and got.record == make_record(1)


def test_replayed_records_are_not_duplicated(store: SqlStore) -> None:
    first = make_record(1, tags={"env": "prod"})
    store.write([first, make_record(1, model="dup-in-batch")],
                [Payload("r00001", "full", "hello", "hi")])
    store.write([make_record(1, model="changed"), make_record(2)],
                [Payload("r00001", "full", "changed", "changed"), Payload("r00002", "none", None, None)])
    assert ids(store, RequestFilter()) == ["r00002", "r00001"]
    got = store.get("r00001")
    assert got is not None
    assert got.record == first  # the first write wins
    assert got.payload == Payload("r00001", "full", "hello", "hi")
    assert count(store, "request_tags") == 1
    assert count(store, "payloads") == 2


def test_a_record_another_writer_stores_meanwhile_is_skipped(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_record(1, tags={"env": "prod"})
    store.write([first], [Payload("r00001", "full", "hello", "hi")])
    # As if another writer stored r00001 after this batch looked its records up.
    monkeypatch.setattr(bulk, "stored_postgres", lambda cur, ids: set())
    monkeypatch.setattr(bulk, "stored_sqlite", lambda cur, ids: set())
    store.write([make_record(1, model="late", tags={"env": "dev"}), make_record(2, tags={"env": "dev"})],
                [Payload("r00001", "full", "late", "late"), Payload("r00002", "full", "b", None)])
    got = store.get("r00001")
    assert got is not None and got.record == first
    assert got.payload == Payload("r00001", "full", "hello", "hi")
    assert ids(store, RequestFilter(tags={"env": "dev"})) == ["r00002"]
    assert [count(store, t) for t in ("requests", "payloads", "request_tags")] == [2, 2, 2]


def test_a_failed_batch_writes_nothing(store: SqlStore) -> None:
    with pytest.raises(StoreError) as caught:
        store.write([make_record(1)], [Payload("no-such-record", "full", "a", "b")])
    assert caught.value.status == 503
    assert store.get("r00001") is None
    assert count(store, "requests") == 0


def test_metadata_that_json_cannot_hold_is_kept_as_text(store: SqlStore) -> None:
    store.write([make_record(1, metadata={"when": BASE, "obj": object})], [])
    got = store.get("r00001")
    assert got is not None
    assert got.record.metadata == {"when": BASE, "obj": str(object)}


def test_nul_characters_in_payloads_do_not_lose_the_batch(store: SqlStore) -> None:
    store.write([make_record(1, error_message="a\x00b")], [Payload("r00001", "full", "x\x00y", None)])
    got = store.get("r00001")
    assert got is not None and got.payload is not None and got.payload.prompt is not None
    # PostgreSQL text holds no NUL: both backends keep the same text.
    assert (got.payload.prompt, got.record.error_message) == ("x\ufffdy", "a\ufffdb")


def dataset() -> list[Record]:
    out = []
    for i in range(40):
        out.append(make_record(
            i,
            model=("gpt-a", "gpt-b")[i % 2],
            deployment=("d1", "d2", "d3")[i % 3],
            key_id=f"k{i % 4}",
            team=None if i % 5 == 0 else ("red", "blue")[i % 2],
            end_user=f"u{i % 6}",
            session_id=f"s{i % 7}",
            status=("ok", "ok", "error", "blocked")[i % 4],
            tags={"env": ("prod", "dev")[i % 2], "tier": ("free", "paid", "free")[i % 3]},
        ))
    return out


FILTERS: list[dict[str, Any]] = [
    {},
    {"since": BASE + 10},
    {"until": BASE + 10},
    {"since": BASE + 5, "until": BASE + 25},
    {"model": "gpt-b"},
    {"deployment": "d3"},
    {"key_id": "k2"},
    {"team": "red"},
    {"end_user": "u5"},
    {"session_id": "s3"},
    {"status": "blocked"},
    {"status": "error"},
    {"tags": {"env": "dev"}},
    {"tags": {"env": "dev", "tier": "paid"}},
    {"tags": {"env": "nope"}},
    {"model": "gpt-a", "status": "ok", "tags": {"tier": "free"}, "since": BASE + 3},
]


def matches(record: Record, **where: Any) -> bool:
    for name, value in where.items():
        if name == "since" and record.started_at < value:
            return False
        if name == "until" and record.started_at >= value:
            return False
        if name == "tags" and any(record.tags.get(k) != v for k, v in value.items()):
            return False
        if name not in ("since", "until", "tags") and getattr(record, name) != value:
            return False
    return True


@pytest.mark.parametrize("where", FILTERS, ids=lambda w: ",".join(w) or "all")
def test_each_filter_selects_the_matching_records(store: SqlStore, where: dict[str, Any]) -> None:
    records = dataset()
    store.write(records, [])
    expected = [r.request_id for r in sorted(records, key=lambda r: -r.started_at)
                if matches(r, **where)]
    assert ids(store, RequestFilter(**where)) == expected


def test_text_search_over_prompts_and_completions(store: SqlStore) -> None:
    store.write([make_record(i) for i in range(5)], [
        Payload("r00000", "full", '[{"role": "user", "content": "What is the Capital of France?"}]',
                "Paris."),
        Payload("r00001", "full", "tell me a joke", "Why did the 100% chicken_cross?"),
        Payload("r00002", "redacted", "[EMAIL] wrote", None),
        Payload("r00003", "none", None, None),
    ])
    assert ids(store, RequestFilter(text="capital of")) == ["r00000"]
    assert ids(store, RequestFilter(text="PARIS")) == ["r00000"]
    assert ids(store, RequestFilter(text="100%")) == ["r00001"]
    assert ids(store, RequestFilter(text="n_c")) == ["r00001"]
    assert ids(store, RequestFilter(text="%")) == ["r00001"]  # a literal, not a wildcard
    assert ids(store, RequestFilter(text="[email]")) == ["r00002"]
    assert ids(store, RequestFilter(text="e")) == ["r00002", "r00001", "r00000"]
    assert ids(store, RequestFilter(text="absent")) == []
    assert ids(store, RequestFilter(text="joke", model="other")) == []


def walk(store: SqlStore, where: RequestFilter, limit: int) -> tuple[list[str], list[int]]:
    """Every page of ``where``: the ids in order, and the size of each page."""
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = store.query(where, cursor=cursor, limit=limit)
        seen += [r.request_id for r in page.records]
        sizes.append(len(page.records))
        if page.next_cursor is None:
            return seen, sizes
        cursor = page.next_cursor


def test_a_text_search_reads_a_bounded_number_of_payloads_per_page(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [make_record(i, started_at=BASE + i // 2, model=("gpt-a", "gpt-b")[i % 2])
               for i in range(60)]
    hits = {i for i in range(60) if i % 7 == 0}
    store.write(records, [Payload(f"r{i:05d}", "full", "needle" if i in hits else "hay", None)
                          for i in range(60)])
    expected = [r.request_id for r in sorted(records, key=lambda r: (r.started_at, r.request_id),
                                             reverse=True) if int(r.request_id[1:]) in hits]
    assert ids(store, RequestFilter(text="NEEDLE")) == expected  # all in the first chunk

    monkeypatch.setattr(pages, "TEXT_CHUNK", 5)
    seen, sizes = walk(store, RequestFilter(text="needle"), limit=3)
    assert seen == expected
    assert sizes[0] == 3  # chunks are read until the page is full ...
    monkeypatch.setattr(pages, "TEXT_BUDGET_S", 0.0)
    seen, sizes = walk(store, RequestFilter(text="needle"), limit=3)
    assert seen == expected
    assert len(sizes) == 12 and 0 in sizes  # ... or the time is up: one chunk a page
    monkeypatch.setattr(pages, "TEXT_BUDGET_S", 10.0)
    monkeypatch.setattr(pages, "TEXT_MAX", 10)
    seen, sizes = walk(store, RequestFilter(text="needle", model="gpt-b"), limit=50)
    assert seen == [rid for rid in expected if int(rid[1:]) % 2 == 1]
    assert len(sizes) == 3  # 30 records of gpt-b, 10 a page


def test_pages_with_a_tag_follow_the_tag_index(store: SqlStore) -> None:
    records = dataset() + [make_record(100 + i, started_at=BASE + 5, tags={"env": "dev"})
                           for i in range(5)]  # ties on started_at
    store.write(records, [])
    for where in ({"tags": {"env": "dev"}}, {"tags": {"env": "dev", "tier": "free"}},
                  {"tags": {"tier": "paid"}, "model": "gpt-a"},
                  {"tags": {"env": "dev"}, "since": BASE + 3, "until": BASE + 30}):
        expected = [r.request_id for r in sorted(records, key=lambda r: (r.started_at, r.request_id),
                                                 reverse=True) if matches(r, **where)]
        assert walk(store, RequestFilter(**where), limit=3)[0] == expected, where


def test_pages_cover_every_record_once_newest_first(store: SqlStore) -> None:
    # Ties on started_at, so that the cursor must order by request_id too.
    records = [make_record(i, started_at=BASE + i // 3) for i in range(25)]
    store.write(records, [])
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.query(RequestFilter(), cursor=cursor, limit=4)
        pages += 1
        seen += [r.request_id for r in page.records]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        store.write([make_record(100 + pages, started_at=BASE + 1000)], [])  # newer: not in the walk
    assert pages == 7
    expected = [r.request_id for r in sorted(records, key=lambda r: (r.started_at, r.request_id),
                                             reverse=True)]
    assert seen == expected


def test_pages_with_a_filter_and_an_exact_last_page(store: SqlStore) -> None:
    store.write(dataset(), [])
    first = store.query(RequestFilter(model="gpt-a"), limit=10)
    second = store.query(RequestFilter(model="gpt-a"), cursor=first.next_cursor, limit=10)
    assert second.next_cursor is None
    got = [r.request_id for r in first.records + second.records]
    assert got == ids(store, RequestFilter(model="gpt-a")) and len(got) == 20


def test_cursor_round_trip_and_malformed_cursors() -> None:
    assert decode_cursor(encode_cursor(BASE + 0.123456789, "r/1")) == (BASE + 0.123456789, "r/1")
    for bad in ("", "abc", "!!!", encode_cursor(1.0, "x")[:-2], "WzEsMl0"):  # WzEsMl0 is [1,2]
        with pytest.raises(InvalidRequest):
            decode_cursor(bad)


def test_bad_limit_and_status_are_invalid_requests(store: SqlStore) -> None:
    for limit in (0, 1001):
        with pytest.raises(InvalidRequest):
            store.query(RequestFilter(), limit=limit)
    with pytest.raises(InvalidRequest):
        RequestFilter(status="fine")  # type: ignore[arg-type]


def test_feedback_is_kept_with_its_request(store: SqlStore) -> None:
    store.write([make_record(1)], [])
    first = store.add_feedback("r00001", score=0.2, source="user", at=BASE + 10)
    second = store.add_feedback("r00001", label="wrong", comment="made up a date", source="review",
                                at=BASE + 20)
    assert first != second
    got = store.get("r00001")
    assert got is not None
    assert [(f.id, f.score, f.label, f.comment, f.source, f.created_at) for f in got.feedback] == [
        (first, 0.2, None, None, "user", BASE + 10),
        (second, None, "wrong", "made up a date", "review", BASE + 20),
    ]
    with pytest.raises(NotFound):
        store.add_feedback("nope", score=1.0)
    with pytest.raises(InvalidRequest):
        store.add_feedback("r00001")


def test_purge_deletes_old_records_with_their_payloads_tags_and_feedback(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_module, "_PURGE_BATCH", 3)  # several batches
    records = [make_record(i, tags={"t": "v"}) for i in range(20)]
    store.write(records, [Payload(r.request_id, "full", "p", "c") for r in records])
    for r in records:
        store.add_feedback(r.request_id, score=1.0)
    assert store.purge(BASE + 10) == 10
    assert ids(store, RequestFilter()) == [f"r{i:05d}" for i in range(19, 9, -1)]
    assert store.get("r00009") is None
    assert store.get("r00010") is not None
    assert [count(store, t) for t in ("requests", "payloads", "request_tags", "feedback")] == [10] * 4
    assert store.purge(BASE + 10) == 0


def test_concurrent_writers_and_readers(store: SqlStore) -> None:
    def writer(n: int) -> None:
        for batch in range(10):
            recs = [make_record(n * 1000 + batch * 10 + i) for i in range(10)]
            store.write(recs, [Payload(r.request_id, "full", "p", None) for r in recs])
            store.write(recs[:3], [])  # a replay racing the other writers
            store.query(RequestFilter(), limit=20)

    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(writer, n) for n in range(4)]:
            done.result()
    assert count(store, "requests") == 400
    assert count(store, "payloads") == 400


def test_metadata_with_integers_past_64_bits_and_nested_values(store: SqlStore) -> None:
    metadata = {"big": 2**70, "neg": -(2**65), "nested": {"list": [1, 2.5, None, "x"]}, 3: "int key"}
    store.write([make_record(1, metadata=metadata)], [])
    got = store.get("r00001")
    assert got is not None
    assert got.record.metadata == {"big": 2**70, "neg": -(2**65),
                                   "nested": {"list": [1, 2.5, None, "x"]}, "3": "int key"}


@pytest.mark.parametrize("store_url", [b for b in BACKENDS if b == "postgres"], indirect=True)
def test_postgres_connections_notice_a_vanished_server(store: SqlStore) -> None:
    """TCP keepalives and a send timeout on every connection: a server gone without closing
    (its host down, a partition) fails a query within seconds instead of holding the writer."""
    with store.engine.connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    assert params.get("keepalives_idle") == "10", params
    assert params.get("tcp_user_timeout") == "30000", params


@pytest.mark.parametrize("changes", [
    {"input_tokens": 10**30},
    {"end_user": "\ud800"},
    {"started_at": math.nan},
    {"metadata": {"self": "\udfff"}},
])
def test_a_record_the_database_cannot_hold_is_refused_as_such(store: SqlStore,
                                                              changes: dict[str, Any]) -> None:
    # The recorder sets a refused record aside and goes on; an outage it would wait out.
    with pytest.raises(RecordsRefused):
        store.write([make_record(1), make_record(2, **changes)], [])
    assert count(store, "requests") == 0
    store.write([make_record(1), bound_record(make_record(2, **changes))], [])
    assert count(store, "requests") == 2


def test_ids_and_filters_with_characters_no_record_holds_are_looked_up_as_stored(
        store: SqlStore) -> None:
    odd = bound_record(make_record(1, end_user="a\x00b", client_request_id="c\x00",
                                   tags={"t\x00": "v\ud800"}))
    odd.request_id = "r\ufffd"
    store.write([odd], [])
    got = store.get("r\x00")
    assert got is not None and got.record.end_user == "a\ufffdb"
    assert store.get("\ud800") is None
    for where in (RequestFilter(end_user="a\x00b"), RequestFilter(client_request_id="c\x00"),
                  RequestFilter(tags={"t\x00": "v\ud800"}), RequestFilter(text="\x00")):
        assert [r.request_id for r in store.query(where).records] == (
            [] if where.text else ["r\ufffd"]), where
    assert store.add_feedback("r\x00", label="x\x00") > 0


def test_records_are_found_by_the_id_their_client_sent(store: SqlStore) -> None:
    store.write([make_record(i, client_request_id="same") for i in range(3)]
                + [make_record(3)], [])
    assert sorted(ids(store, RequestFilter(client_request_id="same"))) == ["r00000", "r00001",
                                                                           "r00002"]
    # A record stored before client ids were kept apart has the client's id as its own.
    assert ids(store, RequestFilter(client_request_id="r00003")) == ["r00003"]
