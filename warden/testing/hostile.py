"""Hostile answers for the fake upstreams: each mode breaks the shape of one thing Warden reads.

A mode is a function from a good answer object (a whole answer, a stream chunk, or an
Anthropic stream event) to what is sent instead: any JSON value, or ``bytes`` sent as they are
(not JSON at all). ``OPENAI`` holds the modes of the OpenAI wire format, ``ANTHROPIC`` those of
the Messages API (each with the event type it breaks in a stream), and the ``*_USAGE`` tables
usage objects that are malformed or implausible while the rest of the answer is good.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Garble = Callable[[dict[str, Any]], Any]

ERROR_EVENT = b"event: error\ndata: "
"""Sent in front of a mode's bytes, they make an SSE ``error`` event instead of a data line."""


def _edit(change: Callable[[dict[str, Any]], None]) -> Garble:
    """A mode that changes a deep copy of the answer in place."""

    def garble(obj: dict[str, Any]) -> Any:
        out = copy.deepcopy(obj)
        change(out)
        return out

    return garble


def _choice(obj: dict[str, Any]) -> dict[str, Any]:
    choice: dict[str, Any] = obj["choices"][0]
    return choice


def _message(obj: dict[str, Any]) -> dict[str, Any]:
    """The object holding a chat choice's text (message or delta); a completion's choice."""
    choice = _choice(obj)
    inner: dict[str, Any] = choice.get("message", choice.get("delta", choice))
    return inner


def _text_key(obj: dict[str, Any]) -> str:
    return "text" if "text" in _choice(obj) else "content"


def _set_message(obj: dict[str, Any], value: Any) -> None:
    choice = _choice(obj)
    choice["message" if "message" in choice else "delta" if "delta" in choice else "text"] = value


OPENAI: dict[str, Garble] = {
    "not-json": lambda o: b'{"id": "cut-short", "choices": [',
    "not-object": lambda o: ["not", "an", "object"],
    "null": lambda o: None,
    "choices-not-list": lambda o: {**o, "choices": {"0": "first"}},
    "choice-not-object": lambda o: {**o, "choices": ["hello"]},
    "index-not-int": _edit(lambda o: _choice(o).update(index="abc")),
    "index-negative": _edit(lambda o: _choice(o).update(index=-1)),
    "finish-reason-not-string": _edit(lambda o: _choice(o).update(finish_reason={"why": 1})),
    "message-not-object": _edit(lambda o: _set_message(o, ["hello"])),
    "content-not-string": _edit(lambda o: _message(o).update({_text_key(o): {"t": "hello"}})),
    "role-not-string": _edit(lambda o: _message(o).update(role=7)),
    "tool-calls-not-list": _edit(lambda o: _message(o).update(tool_calls="call_1")),
    "tool-call-arguments-not-string": _edit(lambda o: _message(o).update(tool_calls=[
        {"index": 0, "id": "c1", "type": "function",
         "function": {"name": "f", "arguments": {"q": 1}}}])),
    "error-object": lambda o: {"error": {"message": "the model crashed", "type": "server_error"}},
    "error-event": lambda o: ERROR_EVENT + b'{"error": {"message": "the model crashed"}}',
    "endless-line": lambda o: b'{"pad": "' + b"x" * (9 << 20) + b'"}',
    "data-not-list": lambda o: {**o, "data": {"0": o["data"][0]}},
    "item-not-object": lambda o: {**o, "data": [0.1, 0.2]},
    "embedding-not-list": _edit(lambda o: o["data"][0].update(embedding="0.1,0.2")),
    "embedding-not-numbers": _edit(lambda o: o["data"][0].update(embedding=[0.1, "x", None])),
}

OPENAI_USAGE: dict[str, Any] = {
    "usage-string": {"prompt_tokens": "12", "completion_tokens": "3", "total_tokens": "15"},
    "usage-negative": {"prompt_tokens": 5, "completion_tokens": -7, "total_tokens": -2},
    "usage-huge": {"prompt_tokens": 10**12, "completion_tokens": 2, "total_tokens": 10**12 + 2},
    "usage-float": {"prompt_tokens": 2.5, "completion_tokens": 1, "total_tokens": 3.5},
    "usage-bool": {"prompt_tokens": True, "completion_tokens": True, "total_tokens": 2},
    "usage-nested": {"prompt_tokens": {"n": 3}, "completion_tokens": [1], "total_tokens": 4},
    "usage-not-object": "a lot",
    "usage-implausible": {"prompt_tokens": 3, "completion_tokens": 90_000,
                          "total_tokens": 90_003},
    "usage-cached-above-prompt": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                                  "prompt_tokens_details": {"cached_tokens": 50}},
}


def _event(key: str, value: Any) -> Garble:
    return _edit(lambda e: e.update({key: value}))


def _nested(outer: str, key: str, value: Any) -> Garble:
    return _edit(lambda e: e[outer].update({key: value}))


ANTHROPIC: dict[str, tuple[str, Garble]] = {
    # the first event: what Warden makes of it is the stream's first chunk
    "not-json": ("message_start", lambda e: b'{"type": "message_start", "message": {'),
    "not-object": ("message_start", lambda e: ["message_start"]),
    "type-not-string": ("message_start", _event("type", 5)),
    "message-not-object": ("message_start", _event("message", "msg_1")),
    "id-not-string": ("message_start", _nested("message", "id", {"id": 1})),
    "model-not-string": ("message_start", _nested("message", "model", 42)),
    # later events: after the first chunk
    "block-not-object": ("content_block_start", _event("content_block", "text")),
    "block-index-not-int": ("content_block_start", _event("index", "0")),
    "index-not-int": ("content_block_delta", _event("index", "abc")),
    "delta-not-object": ("content_block_delta", _event("delta", "hi")),
    "text-not-string": ("content_block_delta", _nested("delta", "text", 5)),
    "stop-reason-not-string": ("message_delta", _nested("delta", "stop_reason", 7)),
    "message-delta-not-object": ("message_delta", _event("delta", None)),
    "error-event": ("content_block_delta", lambda e: {
        "type": "error", "error": {"type": "api_error", "message": "the model crashed"}}),
}

ANTHROPIC_MESSAGE: dict[str, Garble] = {
    "not-json": lambda m: b'{"type": "message", "content": [',
    "not-object": lambda m: ["message"],
    "content-not-list": _event("content", "hello"),
    "block-not-object": _event("content", ["hello"]),
    "text-not-string": _edit(lambda m: m["content"][0].update(text=["hello"])),
    "id-not-string": _event("id", 5),
    "stop-reason-not-string": _event("stop_reason", {"r": 1}),
    "error-object": lambda m: {"type": "error",
                               "error": {"type": "api_error", "message": "the model crashed"}},
}

ANTHROPIC_USAGE: dict[str, Any] = {
    "usage-string": {"input_tokens": "12", "output_tokens": "3"},
    "usage-negative": {"input_tokens": 5, "output_tokens": -7},
    "usage-huge": {"input_tokens": 10**12, "output_tokens": 2},
    "usage-float": {"input_tokens": 2.5, "output_tokens": 1},
    "usage-bool": {"input_tokens": True, "output_tokens": True},
    "usage-nested": {"input_tokens": {"n": 3}, "output_tokens": [1]},
    "usage-not-object": "a lot",
    "usage-implausible": {"input_tokens": 3, "output_tokens": 90_000},
}
