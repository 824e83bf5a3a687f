"""A RequestFilter as SQL conditions on the ``requests`` table."""

from __future__ import annotations

import sqlalchemy as sa

from warden.store.base import RequestFilter
from warden.store.tables import payloads, request_tags, requests

_EQUAL = ("model", "deployment", "key_id", "team", "end_user", "session_id", "status")


def conditions(where: RequestFilter) -> list[sa.ColumnElement[bool]]:
    """The conditions (to be ANDed) that select the records matching ``where``."""
    r = requests.c
    out: list[sa.ColumnElement[bool]] = []
    if where.since is not None:
        out.append(r.started_at >= where.since)
    if where.until is not None:
        out.append(r.started_at < where.until)
    for name in _EQUAL:
        value = getattr(where, name)
        if value is not None:
            out.append(r[name] == value)
    for key, value in where.tags.items():
        out.append(sa.exists().where(
            request_tags.c.request_id == r.request_id,
            request_tags.c.key == key,
            request_tags.c.value == value,
        ))
    if where.text:
        # A substring scan of the payloads: good enough for a dashboard search over a retention
        # window; a full-text index can replace it behind the same filter.
        p = payloads.c
        out.append(sa.exists().where(
            p.request_id == r.request_id,
            sa.or_(p.prompt.icontains(where.text, autoescape=True),
                   p.completion.icontains(where.text, autoescape=True)),
        ))
    return out
