"""Pages of records, newest first, by keyset on (started_at, request_id) (``Store.query``).

A page reads its records in index order from where the previous one stopped, so every page
costs about the same, the first or the thousandth: each filter has an index that starts with
its column and goes on with started_at (``migrations``), and a tag filter reads the tag's own
index (``filters.page_source``).

A text search cannot be indexed that way: it checks the payloads of the records matching the
other filters, newest first, and a rare text would have it read every payload of the store for
one page. So one page reads them in chunks of ``TEXT_CHUNK`` records and stops, when it has not
found ``limit`` records, before a chunk that would end past ``TEXT_BUDGET_S`` seconds, or after
``TEXT_MAX`` records, whichever comes first (the first chunk is always read); its cursor then
points after the last record read, and the next page goes on from there. Such a page holds
fewer records than ``limit`` (maybe none) and still has a next_cursor.
"""

from __future__ import annotations

import time
from typing import Any, cast

import sqlalchemy as sa

from warden.observe.record import Record
from warden.store.base import RequestFilter
from warden.store.filters import PageSource, page_source, text_condition
from warden.store.rows import to_record

TEXT_CHUNK = 1_000
TEXT_BUDGET_S = 0.06
TEXT_MAX = 50_000

Position = tuple[float, str]  # (started_at, request_id) of the last record read


def read(conn: sa.Connection, where: RequestFilter, after: Position | None,
         limit: int) -> tuple[list[Record], Position | None]:
    """Up to ``limit`` records matching ``where`` after ``after``, newest first, and where the
    next page starts (None: nothing is left)."""
    source = page_source(where)
    if where.text:
        return _search(conn, source, where.text, after, limit)
    found = _records(conn, source, source.select, after, None, limit + 1)
    return _cut(found, limit) if len(found) > limit else (found, None)


def _search(conn: sa.Connection, source: PageSource, text: str, after: Position | None,
            limit: int) -> tuple[list[Record], Position | None]:
    matching = source.select.where(text_condition(text))
    columns = cast("sa.Select[Any]", source.select.with_only_columns(source.started_at,
                                                                    source.request_id))
    found: list[Record] = []
    deadline = time.monotonic() + TEXT_BUDGET_S
    scanned = 0
    while True:
        began = time.monotonic()
        # The last of the next TEXT_CHUNK records, where this chunk ends, and whether any follows.
        bounds = conn.execute(_ordered(source, _after(source, columns, after))
                              .offset(TEXT_CHUNK - 1).limit(2)).all()
        last = bounds[0] if bounds else None
        found += _records(conn, source, matching, after, last, limit + 1 - len(found))
        if len(found) > limit:
            return _cut(found, limit)
        if last is None or len(bounds) < 2:
            return found, None
        after = (float(last[0]), str(last[1]))
        scanned += TEXT_CHUNK
        now = time.monotonic()
        # Another chunk would take about as long as this one: stop if it would end past the budget.
        if len(found) == limit or scanned >= TEXT_MAX or now + (now - began) > deadline:
            return found, after


def _after(source: PageSource, select: sa.Select[Any], after: Position | None) -> sa.Select[Any]:
    if after is None:
        return select
    return select.where(sa.tuple_(source.started_at, source.request_id) < sa.tuple_(*after))


def _ordered(source: PageSource, select: sa.Select[Any]) -> sa.Select[Any]:
    return select.order_by(source.started_at.desc(), source.request_id.desc())


def _records(conn: sa.Connection, source: PageSource, select: sa.Select[Any], after: Position | None,
             down_to: Any, n: int) -> list[Record]:
    """Up to ``n`` records of ``select`` after ``after`` and not past ``down_to`` (inclusive)."""
    select = _after(source, select, after)
    if down_to is not None:
        select = select.where(sa.tuple_(source.started_at, source.request_id)
                              >= sa.tuple_(down_to[0], down_to[1]))
    return [to_record(row) for row in conn.execute(_ordered(source, select).limit(n))]


def _cut(found: list[Record], limit: int) -> tuple[list[Record], Position]:
    last = found[limit - 1]
    return found[:limit], (last.started_at, last.request_id)
