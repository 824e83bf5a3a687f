"""Fuzzing the admin API under /api (and the other read endpoints) with an admin key: query
parameters that are NaN, infinite, huge, negative, NUL, lone surrogates or very long, path ids of
the same kind, and hostile POST bodies for /api/feedback, /api/keys and /api/admin/reload. Every
answer is a result or an OpenAI error object, never a 5xx, on SQLite and PostgreSQL."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import ADMIN, EXAMPLES, FUZZ, Gate, shorten
from tests.fuzz.strategies import (
    encode,
    hostile_text,
    query_string,
    query_value,
    raw_bodies,
    scalars,
    values,
)

FILTERS = ["model", "deployment", "key", "team", "user", "session", "status", "tag", "since",
           "until", "range"]
GET_ENDPOINTS = {
    "/api/requests": [*FILTERS, "q", "limit", "cursor"],
    "/api/stats": [*FILTERS, "bucket", "group_by"],
    "/api/summary": [*FILTERS, "group_by", "percentiles"],
    "/api/findings": [*FILTERS, "bucket"],
    "/api/findings/requests": [*FILTERS, "action", "limit"],
    "/api/budgets": ["since", "x"], "/api/resources": ["since", "x"],
    "/api/deployments": ["x"], "/api/config": ["x"], "/api/keys": ["x"],
    "/v1/models": ["x"], "/metrics": ["name[]", "x"], "/healthz": ["x"], "/readyz": ["x"],
}
"""Each read endpoint and the query parameters it reads (and one it does not)."""
SPECIAL = ["nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e309", "-1", "0", "9" * 400,
           "\x00", "\ud800", "x" * 5000, "", "1e-400", "a:\x00"]


def _path_part(text: str) -> str:
    return urllib.parse.quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.mark.parametrize("path", list(GET_ENDPOINTS))
def test_read_endpoints_answer_any_query(gate: Gate, path: str) -> None:
    if path == "/api/requests":  # some records to read, before the keys test makes /v1 closed
        for n in range(3):
            data = encode({"model": "echo", "messages": [{"role": "user", "content": f"m{n}"}]})
            gate.send("POST", "/v1/chat/completions", "a plain request", data,
                      {"content-type": "application/json", "x-warden-tag-team": "t"})
    failures = []
    for name in GET_ENDPOINTS[path]:  # every parameter with every special value, one by one
        for value in SPECIAL:
            query = query_string([(name, value)])
            try:
                gate.send("GET", f"{path}?{query}", f"{name}={value!r:.60}", admin=True)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0] + f": {path}?{name}={value!r:.60}")
    assert not failures, "\n".join(failures)

    names = st.sampled_from(GET_ENDPOINTS[path])
    pairs = st.lists(st.tuples(names, st.sampled_from(SPECIAL) | query_value), min_size=1,
                     max_size=4)

    @settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
    @given(pairs=pairs)
    def read(pairs: list[tuple[str, str]]) -> None:
        query = query_string(pairs)
        gate.send("GET", f"{path}?{query}", f"query {shorten(query)} ({pairs!r:.600})",
                  admin=True)

    read()
    gate.settle()


def test_ids_in_paths_get_a_result_or_a_not_found(gate: Gate) -> None:
    @FUZZ
    @given(base=st.sampled_from(["/api/requests/", "/v1/models/"]),
           rid=query_value | hostile_text, method=st.sampled_from(["GET", "DELETE"]))
    def by_id(base: str, rid: str, method: str) -> None:
        path = base + _path_part(rid)
        if method == "DELETE":
            path = "/api/keys/" + _path_part(rid)
        gate.send(method, path, f"id {rid!r:.300}", admin=True)

    by_id()
    gate.settle()


feedback = st.fixed_dictionaries({}, optional={
    "request_id": st.sampled_from(["nope", "fuzz-same-id"]) | hostile_text | scalars,
    "score": scalars | values, "label": scalars | values, "comment": scalars | values,
    "source": scalars | values, "x": values})
new_keys = st.fixed_dictionaries({}, optional={
    "name": hostile_text | scalars, "role": st.sampled_from(["client", "admin", "x"]) | scalars,
    "team": hostile_text | scalars, "models": st.lists(hostile_text, max_size=3) | values,
    "tags": st.dictionaries(hostile_text, hostile_text | scalars, max_size=3) | values,
    "payloads": st.sampled_from(["full", "redacted", "none"]) | scalars, "x": values})


def test_admin_posts_answer_any_body(gate: Gate) -> None:
    """/api/feedback and /api/keys (the keys created here make /v1 need one, so this module
    sends no /v1 requests), and /api/admin/reload, whose body is ignored."""
    @FUZZ
    @given(choice=st.sampled_from(["/api/feedback", "/api/keys"]).flatmap(
               lambda path: st.tuples(st.just(path), feedback if path == "/api/feedback"
                                      else new_keys) | st.tuples(st.just(path), values)),
           ascii_only=st.booleans())
    def post(choice: tuple[str, Any], ascii_only: bool) -> None:
        path, body = choice
        data = encode(body, ascii_only)
        gate.send("POST", path, f"body {shorten(data)}", data,
                  {"content-type": "application/json"}, admin=True)

    post()

    @settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
    @given(raw=raw_bodies, path=st.sampled_from(["/api/feedback", "/api/keys",
                                                 "/api/admin/reload"]),
           auth=st.sampled_from([f"Bearer {ADMIN}"] * 4 + ["", "Bearer ", "Basic x",
                                                          "Bearer \u00e9", "Bearer \x00"]))
    def raw(raw: bytes, path: str, auth: str) -> None:
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = auth.encode("utf-8").decode("latin-1")
        gate.send("POST", path, f"raw body {shorten(raw)} with authorization {auth!r}", raw,
                  headers)

    raw()
    gate.settle()
