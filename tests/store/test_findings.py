"""Guard findings in the store: written with their records (one row each), counted per time
bucket and kind, the newest guarded requests found by action; copied from the records stored
before m004; deleted with their records."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.store.factory import BASE, COLUMNS_BEFORE_M005, make_record, rows_before_m005
from warden.errors import InvalidRequest
from warden.observe.record import Finding, Record
from warden.store import RequestFilter, SqlStore, open_store
from warden.store.migrations import m001_initial, m002_query_indexes, m003_api_keys, migrate
from warden.store.sql import engine_url
from warden.store.tables import request_findings

PII = Finding(scanner="pii", type="EMAIL_ADDRESS", action="redact", score=1.0, where="input",
              start=3, end=20, part=0)
CARD = Finding(scanner="pii", type="CREDIT_CARD", action="redact", score=0.9, where="input")
JAILBREAK = Finding(scanner="injection", type="jailbreak", action="block", score=0.97,
                    where="input")
LEAK = Finding(scanner="secrets", type="aws_key", action="redact", score=1.0, where="output")


def guarded() -> list[Record]:
    """Records every 100 s, some with findings."""
    kinds = [[], [PII], [JAILBREAK], [PII, CARD], [], [LEAK], [JAILBREAK, PII]]
    return [make_record(i, started_at=BASE + 100 * i, findings=kinds[i % len(kinds)],
                        team="red" if i % 2 else "blue",
                        status="blocked" if JAILBREAK in kinds[i % len(kinds)] else "ok")
            for i in range(70)]


def expected_counts(records: list[Record], bucket_s: float) -> Counter[tuple[object, ...]]:
    out: Counter[tuple[object, ...]] = Counter()
    for r in records:
        for f in r.findings:
            out[(math.floor(r.started_at / bucket_s) * bucket_s, f.scanner, f.type, f.action,
                 f.where)] += 1
    return out


def test_findings_are_counted_per_bucket_and_kind(store: SqlStore) -> None:
    records = guarded()
    store.write(records, [])
    rows = store.finding_counts(RequestFilter(), 600)
    assert Counter({(r.bucket_start, r.scanner, r.type, r.action, r.where): r.count
                    for r in rows}) == expected_counts(records, 600)
    assert [r.bucket_start for r in rows] == sorted(r.bucket_start for r in rows)


def test_finding_counts_honour_time_and_record_filters(store: SqlStore) -> None:
    records = guarded()
    store.write(records, [])
    where = RequestFilter(since=BASE + 1000, until=BASE + 5000, team="red")
    kept = [r for r in records if BASE + 1000 <= r.started_at < BASE + 5000 and r.team == "red"]
    rows = store.finding_counts(where, 3600)
    assert Counter({(r.bucket_start, r.scanner, r.type, r.action, r.where): r.count
                    for r in rows}) == expected_counts(kept, 3600)
    with pytest.raises(InvalidRequest):
        store.finding_counts(where, 0)


def test_the_newest_guarded_requests_by_action(store: SqlStore) -> None:
    records = guarded()
    store.write(records, [])
    newest = sorted(records, key=lambda r: r.started_at, reverse=True)
    blocked = [r.request_id for r in newest if any(f.action == "block" for f in r.findings)]
    assert [r.request_id for r in store.flagged(RequestFilter(), ["block"], 5)] == blocked[:5]
    redacted = [r.request_id for r in newest
                if any(f.action in ("redact", "pseudonymize") for f in r.findings)]
    found = store.flagged(RequestFilter(), ["redact", "pseudonymize"], 50)
    assert [r.request_id for r in found] == redacted
    assert found[0].findings  # whole records, findings included
    red = store.flagged(RequestFilter(team="red", since=BASE + 3000), ["block"], 50)
    assert [r.request_id for r in red] == [
        r.request_id for r in newest if r.team == "red" and r.started_at >= BASE + 3000
        and any(f.action == "block" for f in r.findings)]
    assert store.flagged(RequestFilter(), ["flag"], 5) == []


def test_findings_go_with_their_records(store: SqlStore) -> None:
    records = guarded()
    store.write(records, [])
    store.write(records[:10], [])  # a replay adds nothing
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(request_findings)).scalar()
    assert stored == sum(len(r.findings) for r in records)
    store.purge(BASE + 3000)
    kept = [r for r in records if r.started_at >= BASE + 3000]
    assert sum(r.count for r in store.finding_counts(RequestFilter(), 86400)) == sum(
        len(r.findings) for r in kept)


def test_records_stored_before_m004_get_their_findings(store_url: str) -> None:
    url = engine_url(store_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True)
    engine = sa.create_engine(url)
    records = guarded()[:14]
    try:
        migrate(engine, "test", (m001_initial, m002_query_indexes, m003_api_keys))
        plain = sa.table("requests", *(sa.column(name) for name in COLUMNS_BEFORE_M005))
        with engine.begin() as conn:  # as the m003 store wrote them
            conn.execute(sa.insert(plain), rows_before_m005(records))
    finally:
        engine.dispose()
    store = open_store(store_url)
    assert isinstance(store, SqlStore)
    try:
        rows = store.finding_counts(RequestFilter(), 600)
        assert Counter({(r.bucket_start, r.scanner, r.type, r.action, r.where): r.count
                        for r in rows}) == expected_counts(records, 600)
        with store.engine.connect() as conn:
            scores = conn.execute(sa.select(request_findings.c.seq, request_findings.c.score)
                                  .where(request_findings.c.request_id == "r00003")
                                  .order_by(request_findings.c.seq)).all()
        assert [tuple(s) for s in scores] == [(0, 1.0), (1, 0.9)]
    finally:
        store.close()
