"""Fuzzing what an upstream answers: a hostile OpenAI-compatible server (a real one on loopback)
sends malformed streams and bodies — chunks that are not objects, bad choices and index types,
data lines that are not JSON, usage of the wrong type, no [DONE], garbage after it, truncated
JSON, broken UTF-8, a wrong content type, a cut connection. The client still gets a result or
an OpenAI error (a 5xx only as 502/503/504), streams stay well-formed, and every request leaves
one record, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import Gate, shorten
from tests.fuzz.strategies import Raw, encode, hostile_text, values
from warden.testing.hostile_upstream import Reply

EXAMPLES = int(os.environ.get("WARDEN_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

bad_numbers = st.sampled_from(["5", "-1", -1, 1e30, 1.5, None, Raw("NaN"), Raw("1e400"), 2**70,
                               [], {}, True, "\x00"]) | values
choice = st.fixed_dictionaries({}, optional={
    "index": st.sampled_from([0, 1, -1, "0", 1.5, None, 2**64, Raw("NaN")]) | values,
    "delta": st.fixed_dictionaries({}, optional={"content": hostile_text | values,
                                                 "role": st.just("assistant") | values,
                                                 "tool_calls": values}) | values,
    "message": st.fixed_dictionaries({}, optional={"content": hostile_text | values,
                                                   "role": st.just("assistant") | values}),
    "text": hostile_text | values,
    "finish_reason": st.sampled_from(["stop", "length", None]) | values,
    "logprobs": values,
})
usage = st.fixed_dictionaries({}, optional={"prompt_tokens": bad_numbers,
                                            "completion_tokens": bad_numbers,
                                            "total_tokens": bad_numbers}) | values
good_chunk = hostile_text.map(lambda text: {
    "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
    "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
chunks = (good_chunk
          | st.fixed_dictionaries({"id": st.just("c1")}, optional={
              "object": st.sampled_from(["chat.completion.chunk", "text_completion"]) | values,
              "choices": st.lists(choice, max_size=3) | values, "usage": usage,
              "error": values, "model": values})
          | values)
"""What one ``data:`` line of a stream holds: good, half good, or anything."""


@st.composite
def events(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    sep = draw(st.sampled_from([b"\n\n"] * 4 + [b"\r\n\r\n", b"\n", b"", b"\r\r"]))
    if kind < 6:
        return b"data: " + encode(draw(chunks), draw(st.booleans())) + sep
    if kind < 8:  # a chunk cut short
        data = encode(draw(good_chunk | chunks))
        return b"data: " + data[:draw(st.integers(0, max(0, len(data) - 1)))] + sep
    return draw(st.sampled_from([b"data: {\n\n", b"data: garbage\n\n", b"data:\n\n", b"data: \n\n",
                                 b"event: error\n\n", b": keep-alive\n\n", b"retry: x\n\n",
                                 b"data: [DONE]\n\n", b"\xff\xfe\xfd\n\n", b"data: \xed\xa0\x80\n\n",
                                 b"data: null\n\n", b"data: 1e400\n\n", b"id: \x00\n\n",
                                 b"data: [DONE]garbage\n\n"]))


@st.composite
def stream_bodies(draw: st.DrawFn) -> bytes:
    # Mostly a good start, so that the damage comes once the client has its 200 and headers.
    good = [b"data: " + encode(draw(good_chunk)) + b"\n\n"
            for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3])))]
    body = b"".join(good + draw(st.lists(events(), max_size=6)))
    end = draw(st.sampled_from([b"data: [DONE]\n\n", b"", b"data: [DONE]\n\ndata: {\"x\": 1}\n\n",
                                b"data: [DONE]\n\ngarbage", b"data: [DONE]"]))
    return body + end


@st.composite
def plain_bodies(draw: st.DrawFn) -> bytes:
    tree: Any = draw(st.fixed_dictionaries({"id": st.just("x")}, optional={
        "object": st.sampled_from(["chat.completion", "text_completion", "list"]) | values,
        "choices": st.lists(choice, max_size=3) | values, "usage": usage,
        "data": st.lists(st.fixed_dictionaries({}, optional={
            "embedding": st.lists(st.floats() | bad_numbers, max_size=4) | values,
            "index": bad_numbers, "object": values}), max_size=3) | values,
        "model": values, "error": values}) | values)
    data = encode(tree, draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    streamed = draw(st.integers(0, 2)) > 0
    body = draw(stream_bodies() if streamed else plain_bodies() | st.binary(max_size=200))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = tuple(body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True))
    return Reply(
        status=draw(st.sampled_from([200] * 6 + [201, 400, 401, 404, 408, 429, 500, 502, 503,
                                                 529])),
        content_type=draw(st.sampled_from(["text/event-stream"] * (6 if streamed else 1) + [
                                           "application/json", None,
                                           "text/plain", "text/event-stream; charset=utf-8",
                                           "application/json; charset=latin-1"])),
        pieces=pieces, chunked=draw(st.booleans()), abort=draw(st.integers(0, 5)) == 0)


def test_malformed_upstream_answers_end_in_a_result_or_an_upstream_error(gate: Gate) -> None:
    @FUZZ
    @given(reply=replies(), stream=st.booleans(), usage=st.booleans(),
           path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]))
    def hostile(reply: Reply, stream: bool, usage: bool, path: str) -> None:
        stream = stream or (reply.content_type or "").startswith("text/event-stream")
        body: dict[str, Any] = {"model": "hostile"}
        if path == "/v1/embeddings":
            body["input"] = "hello"
        else:
            body["stream"] = stream
            if usage:
                body["stream_options"] = {"include_usage": True}
            body["prompt" if path == "/v1/completions" else "messages"] = (
                "hello" if path == "/v1/completions" else [{"role": "user", "content": "hello"}])
        gate.hostile.reply = reply
        data = encode(body)
        gate.send("POST", path, f"body {shorten(data)} while the {reply.describe()}", data,
                  {"content-type": "application/json"}, upstream=True)

    hostile()
    gate.settle()
