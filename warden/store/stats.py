"""Per-bucket aggregates of the ``requests`` table (``Store.stats``).

Buckets of whole hours are merged from hour blocks (``warden.store.rollup``), which are read
from the table only when they changed. Other queries read the table: counts and sums are
computed by the database in both dialects, percentiles by PostgreSQL's ``percentile_cont``
there, and in Python from the bucket's rows for SQLite (which has no percentile aggregate), with
the same method (``warden.store.base.percentile``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from warden.store.base import StatsQuery, StatsRow, percentile
from warden.store.filters import conditions
from warden.store.rollup import LATENCY_P as _LATENCY_P
from warden.store.rollup import TTFT_P as _TTFT_P
from warden.store.rollup import HourBlocks, Key, unit_index
from warden.store.tables import requests


def _one(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def compute(conn: sa.Connection, query: StatsQuery, blocks: HourBlocks | None = None
            ) -> list[StatsRow]:
    """The StatsRows of ``query``, ordered by bucket, then group (None first)."""
    if blocks is not None and blocks.serves(query):
        merged = blocks.stats(conn, query)
        if merged is not None:
            return merged
    r = requests.c
    postgres = conn.dialect.name == "postgresql"
    # Buckets are aligned to the epoch.
    index = unit_index(query.bucket_s, postgres)
    group = r[query.group_by] if query.group_by else sa.null()
    inner = (
        sa.select(index.label("bucket"), group.label("grp"), r.status, r.http_status, r.latency_s,
                  r.ttft_s, r.output_tokens_per_s, r.input_tokens, r.output_tokens, r.cost_usd)
        .where(*conditions(query.where))
        .subquery()
    )
    s = inner.c
    columns: list[sa.ColumnElement[Any]] = [
        s.bucket, s.grp, sa.func.count(), _one(s.status == "error"), _one(s.http_status >= 500),
        sa.func.avg(s.output_tokens_per_s), sa.func.sum(s.input_tokens),
        sa.func.sum(s.output_tokens), sa.func.sum(s.cost_usd), _one(s.cost_usd.is_(None)),
    ]
    if postgres:
        columns += [sa.func.percentile_cont(p).within_group(s.latency_s) for p in _LATENCY_P]
        columns += [sa.func.percentile_cont(p).within_group(s.ttft_s) for p in _TTFT_P]
    rows = conn.execute(sa.select(*columns).group_by(s.bucket, s.grp)).all()
    if postgres:
        quantiles = {(row[0], row[1]): tuple(row[10:]) for row in rows}
    else:
        quantiles = _python_percentiles(conn, inner)

    out: list[StatsRow] = []
    for row in rows:
        bucket, grp, count, errors, server_errors, speed, tin, tout, cost, unknown = row[:10]
        lat50, lat95, lat99, ttft50, ttft95 = quantiles[(bucket, grp)]
        out.append(StatsRow(
            bucket_start=bucket * query.bucket_s,
            group=grp,
            count=count,
            requests_per_s=count / query.bucket_s,
            errors=errors,
            error_rate=errors / count,
            server_errors=server_errors,
            availability=1.0 - server_errors / count,
            latency_p50=lat50,
            latency_p95=lat95,
            latency_p99=lat99,
            ttft_p50=ttft50,
            ttft_p95=ttft95,
            output_tokens_per_s=None if speed is None else float(speed),
            input_tokens=int(tin),
            output_tokens=int(tout),
            cost_usd=None if cost is None else float(cost),
            unknown_cost=unknown,
        ))
    out.sort(key=lambda row: (row.bucket_start, row.group is not None, row.group or ""))
    return out


def _python_percentiles(
    conn: sa.Connection, inner: sa.Subquery
) -> dict[Key, tuple[float | None, ...]]:
    """Latency and ttft percentiles per (bucket, group), from the rows themselves."""
    s = inner.c
    latencies: defaultdict[Key, list[float]] = defaultdict(list)
    ttfts: defaultdict[Key, list[float]] = defaultdict(list)
    for bucket, grp, latency, ttft in conn.execute(sa.select(s.bucket, s.grp, s.latency_s, s.ttft_s)):
        latencies[(bucket, grp)].append(latency)
        if ttft is not None:
            ttfts[(bucket, grp)].append(ttft)
    out: dict[Key, tuple[float | None, ...]] = {}
    for key, values in latencies.items():
        values.sort()
        ttft = sorted(ttfts.get(key, ()))
        out[key] = (
            *(percentile(values, p) for p in _LATENCY_P),
            *(percentile(ttft, p) if ttft else None for p in _TTFT_P),
        )
    return out
