"""A RequestFilter as SQL: conditions on the ``requests`` table, and the source of a page."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import sqlalchemy as sa

from warden.observe.bounds import clean_text
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
    # Values are compared as records store them: without NUL characters or lone surrogates
    # (warden.observe.bounds), which PostgreSQL could not even compare.
    for name in _EQUAL:
        value = getattr(where, name)
        if value is not None:
            out.append(r[name] == clean_text(value))
    if where.client_request_id is not None:
        # Records stored before m005 have the client's id (or none) as their own.
        rid = clean_text(where.client_request_id)
        out.append(sa.or_(r.client_request_id == rid, r.request_id == rid))
    if where.status is not None and where.status != "ok":
        # The status index holds the other statuses only; SQLite uses it when the query repeats
        # the index's condition word for word.
        out.append(r.status != "ok")
    for key, value in where.tags.items():
        out.append(sa.exists().where(
            request_tags.c.started_at == r.started_at,  # the primary key starts with it
            request_tags.c.request_id == r.request_id,
            request_tags.c.key == clean_text(key),
            request_tags.c.value == clean_text(value),
        ))
    if where.text:
        out.append(text_condition(where.text))
    return out


def text_condition(text: str) -> sa.ColumnElement[bool]:
    """The records whose prompt or completion holds ``text``, in any case: a substring scan of
    the payloads (``Store.query`` bounds how many one page reads)."""
    p = payloads.c
    text = clean_text(text)  # as payloads store it
    return sa.exists().where(
        p.request_id == requests.c.request_id,
        sa.or_(p.prompt.icontains(text, autoescape=True), p.completion.icontains(text, autoescape=True)),
    )


class PageSource(NamedTuple):
    """The ``requests`` rows matching a filter (all but its text) and the columns that order
    them, newest first: ``started_at`` and ``request_id``, of the record or of its tag."""

    select: sa.Select[Any]
    started_at: sa.ColumnElement[float]
    request_id: sa.ColumnElement[str]


def page_source(where: RequestFilter) -> PageSource:
    """Where a page of ``where`` reads its records from. With a tag, from that tag's index,
    which holds the record's started_at: the newest records with the tag come first whether
    the tag is on most records or on a few."""
    tags = list(where.tags.items())
    rest = dataclasses.replace(where, tags=dict(tags[1:]), text=None)
    select = sa.select(requests).where(*conditions(rest))
    if not tags:
        return PageSource(select, requests.c.started_at, requests.c.request_id)
    (key, value) = tags[0]
    tag = request_tags.alias("tag")  # apart from the EXISTS of the other tags
    t = tag.c
    select = select.join(tag, sa.and_(t.request_id == requests.c.request_id,
                                      t.key == clean_text(key), t.value == clean_text(value)))
    return PageSource(select, t.started_at, t.request_id)
