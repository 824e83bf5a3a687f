"""Bodies the gateway cannot or must not pass on: each is answered with an OpenAI error object
that names what is wrong, and each leaves its record, like any request. An exception nobody
expected is a 500 error object under the request's id, logged with that id, and recorded."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import GatewayThread
from warden.pipeline.context import RequestContext
from warden.pipeline.parse import MAX_DEPTH, ParseBody
from warden.pipeline.stage import Next
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "bad-bodies-admin"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIUpstream]:
    up = FakeOpenAIUpstream()
    with ServerThread(up.http):
        yield up


@pytest.fixture
def gw(upstream: FakeOpenAIUpstream) -> Iterator[GatewayThread]:
    config = {"admin_key": ADMIN, "models": [
        {"name": "up", "routing": {"retries": 0}, "deployments": [
            {"id": "up", "provider": "openai", "base_url": upstream.base_url, "model": "x"}]},
        {"name": "echo", "deployments": [{"id": "fake", "provider": "fake"}]}]}
    with GatewayThread(config) as gateway:
        yield gateway


def send(gw: GatewayThread, path: str, body: bytes | dict[str, Any], rid: str,
         method: str = "POST") -> tuple[int, dict[str, str], dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(gw.url + path, data=data if method == "POST" else None,
                                 method=method,
                                 headers={"Authorization": f"Bearer {ADMIN}", "x-request-id": rid,
                                          "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, \
                json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, \
                json.loads(exc.read())


def record(gw: GatewayThread, rid: str) -> dict[str, Any]:
    """The stored record of request ``rid``, once the recorder has written it."""
    deadline = time.monotonic() + 10
    while True:
        status, _, body = send(gw, f"/api/requests/{rid}", b"", "reader", method="GET")
        if status == 200:
            return dict(body["record"])
        assert time.monotonic() < deadline, f"no record of {rid}"
        time.sleep(0.05)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth - 1):
        value = [value]
    return value


def chat(model: str = "echo", **more: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **more}


@pytest.mark.parametrize(("body", "param"), [
    (chat(stream="yes"), "stream"), (chat(stream_options={"include_usage": "true"}),
                                     "stream_options.include_usage"),
    (chat(n="2"), "n"), (chat(seed=2**63), "seed"), (chat(temperature="1"), "temperature"),
    (chat(logit_bias={"50256": "-100"}), "logit_bias.50256"),
    ({"model": "echo", "messages": [{"role": "user", "content": "hi", "name": 5}]},
     "messages[0].name")])
def test_a_field_of_the_wrong_type_is_a_400_naming_it_and_is_recorded(
        gw: GatewayThread, upstream: FakeOpenAIUpstream, body: dict[str, Any], param: str) -> None:
    body["model"] = "up"
    status, headers, answer = send(gw, "/v1/chat/completions", body, "typed-1")
    assert status == 400 and answer["error"]["param"] == param
    assert answer["error"]["type"] == "invalid_request_error"
    assert headers["x-request-id"] == "typed-1"
    assert upstream.seen.requests == 0
    assert record(gw, "typed-1")["http_status"] == 400


def test_numbers_take_json_integers_as_openai_does(gw: GatewayThread) -> None:
    status, _, _ = send(gw, "/v1/chat/completions",
                        chat(temperature=1, top_p=1, presence_penalty=0, seed=-2**63), "ints")
    assert status == 200


@pytest.mark.parametrize("where", ["top", "messages", "tools"])
def test_a_body_nested_too_deep_is_a_400_naming_the_limit_and_is_recorded(
        gw: GatewayThread, upstream: FakeOpenAIUpstream, where: str) -> None:
    deep = nested(300)  # orjson reads it, but cannot write it again
    body = {"top": chat("up", extra=deep),
            "messages": {"model": "up", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi", "extra": deep}]}]},
            "tools": chat("up", tools=[{"type": "function", "function": deep}])}[where]
    status, headers, answer = send(gw, "/v1/chat/completions", body, f"deep-{where}")
    assert status == 400 and answer["error"]["code"] == "body_too_deep"
    assert f"at most {MAX_DEPTH}" in answer["error"]["message"]
    assert headers["x-request-id"] == f"deep-{where}"
    assert upstream.seen.requests == 0
    assert record(gw, f"deep-{where}")["http_status"] == 400


def test_a_body_at_the_depth_limit_passes_and_brackets_in_strings_do_not_count(
        gw: GatewayThread) -> None:
    # The body's object and MAX_DEPTH - 1 lists around "x": MAX_DEPTH levels.
    body = chat(metadata={"note": "[[[[{{{{\\\"[[" * 100}, extra=nested(MAX_DEPTH))
    status, _, _ = send(gw, "/v1/chat/completions", body, "at-limit")
    assert status == 200
    assert record(gw, "at-limit")["http_status"] == 200
    status, _, answer = send(gw, "/v1/chat/completions", chat(extra=nested(MAX_DEPTH + 1)),
                             "past-limit")
    assert status == 400 and answer["error"]["code"] == "body_too_deep"


def test_an_unexpected_exception_is_a_500_with_the_request_id_logged_and_recorded(
        gw: GatewayThread, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: ParseBody, ctx: RequestContext, call_next: Next) -> None:
        raise TypeError("a defect")

    monkeypatch.setattr(ParseBody, "__call__", broken)
    with caplog.at_level(logging.ERROR, logger="warden"):
        status, headers, answer = send(gw, "/v1/chat/completions", chat(), "boom-1")
    assert status == 500 and headers["x-request-id"] == "boom-1"
    own = headers["x-warden-record-id"]
    assert answer["error"]["type"] == "server_error" and own in answer["error"]["message"]
    assert any("boom-1" in r.getMessage() and own in r.getMessage() and r.exc_info
               for r in caplog.records)
    monkeypatch.undo()
    stored = record(gw, "boom-1")
    assert stored["http_status"] == 500 and stored["status"] == "error"


def test_an_unexpected_exception_in_the_query_api_is_a_500_with_the_request_id(
        gw: GatewayThread, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a defect")

    monkeypatch.setattr(gw.app.state.keeper.store, "query", broken)
    with caplog.at_level(logging.ERROR, logger="warden"):
        status, headers, answer = send(gw, "/api/requests", b"", "boom-2", method="GET")
    assert status == 500 and headers["x-request-id"] == "boom-2"
    assert answer["error"]["type"] == "server_error" and "boom-2" in answer["error"]["message"]
    assert any("boom-2" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_payload_that_cannot_be_built_still_leaves_the_record(
        gw: GatewayThread, monkeypatch: pytest.MonkeyPatch) -> None:
    def unwritable(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("Recursion limit reached")  # what orjson says of a body too deep

    monkeypatch.setattr("warden.observe.keeper.payload_of", unwritable)
    status, _, _ = send(gw, "/v1/chat/completions", chat(), "no-payload")
    assert status == 200
    monkeypatch.undo()
    assert record(gw, "no-payload")["http_status"] == 200


@pytest.mark.parametrize(("body", "param"), [
    ({"label": {"a": 1}}, "label"), ({"comment": [1]}, "comment"), ({"score": True}, "score"),
    ({"score": 1, "source": {"a": []}}, "source"), ({"score": "1"}, "score")])
def test_feedback_of_the_wrong_type_is_a_400_naming_the_field(
        gw: GatewayThread, body: dict[str, Any], param: str) -> None:
    assert send(gw, "/v1/chat/completions", chat(), "rated")[0] == 200
    record(gw, "rated")
    status, _, answer = send(gw, "/api/feedback", {"request_id": "rated", **body}, "fb")
    assert status == 400 and answer["error"]["param"] == param
