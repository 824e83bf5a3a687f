"""Guard findings as the guardrails page reads them (``Store.finding_counts``,
``Store.flagged``), from the ``request_findings`` table: one row per finding, with its
record's start time, indexed by time and by action and time. A filter on anything but time
joins each finding to its record."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from warden.observe.record import Record
from warden.store.base import FindingCount, RequestFilter
from warden.store.filters import conditions
from warden.store.rollup import unit_index
from warden.store.rows import to_record
from warden.store.tables import request_findings, requests

_f = request_findings.c


def _select(where: RequestFilter, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """``columns`` of the findings of the records matching ``where`` (but its text)."""
    conds: list[sa.ColumnElement[bool]] = []
    if where.since is not None:
        conds.append(_f.started_at >= where.since)
    if where.until is not None:
        conds.append(_f.started_at < where.until)
    rest = dataclasses.replace(where, since=None, until=None, text=None)
    stmt = sa.select(*columns).select_from(request_findings)
    if rest != RequestFilter():
        stmt = stmt.join(requests, requests.c.request_id == _f.request_id)
        conds += conditions(rest)
    return stmt.where(*conds)


def counts(conn: sa.Connection, where: RequestFilter, bucket_s: float) -> list[FindingCount]:
    unit = unit_index(bucket_s, conn.dialect.name == "postgresql", _f.started_at).label("unit")
    kind = (_f.scanner, _f.type, _f.action, _f.direction)
    stmt = _select(where, unit, *kind, sa.func.count()).group_by(unit, *kind).order_by(unit, *kind)
    return [FindingCount(bucket_start=u * bucket_s, scanner=scanner, type=type_, action=action,
                         where=direction, count=n)
            for u, scanner, type_, action, direction, n in conn.execute(stmt)]


def flagged(conn: sa.Connection, where: RequestFilter, actions: Sequence[str],
            limit: int) -> list[Record]:
    newest = sa.func.max(_f.started_at).label("newest")
    stmt = (_select(where, _f.request_id, newest).where(_f.action.in_(list(actions)))
            .group_by(_f.request_id).order_by(newest.desc(), _f.request_id.desc()).limit(limit))
    ids = [rid for rid, _ in conn.execute(stmt)]
    if not ids:
        return []
    rows = conn.execute(sa.select(requests).where(requests.c.request_id.in_(ids)))
    found = [to_record(row) for row in rows]
    found.sort(key=lambda r: (r.started_at, r.request_id), reverse=True)
    return found
