"""A fake Anthropic Messages API: a real server on loopback for tests of the anthropic provider.

``POST /v1/messages`` echoes the last user text, word by word, streamed with the real event
sequence or not; it honours ``max_tokens`` and ``stop_sequences``, answers a forced tool choice
with a ``tool_use`` block, and checks what the real API checks that a translation could get
wrong (headers, strict user/assistant alternation, tool results answering the turn before).
It can be told to fail: an error status on every Nth request, a delay, a stream cut after N
events, an ``error`` event mid-stream, or a malformed answer or event (``garbage``: the modes
of ``warden.testing.hostile``). ``GET /v1/models`` lists the one model.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from warden.testing.hostile import ANTHROPIC, ANTHROPIC_MESSAGE, ANTHROPIC_USAGE
from warden.testing.httpserver import HttpServer, RawRequest, Responder

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 529: "overloaded_error"}


@dataclass
class Behaviour:
    """How the upstream misbehaves; change fields at any time, they apply to the next request."""

    fail_status: int | None = None
    fail_every: int = 1
    delay_s: float = 0.0
    event_delay_s: float = 0.0
    die_after_events: int | None = None
    error_after_events: int | None = None
    reply: str | None = None
    retry_after: str | None = None
    cache_read_tokens: int = 0
    garbage: str | None = None  # a mode of hostile.ANTHROPIC(_MESSAGE) or hostile.ANTHROPIC_USAGE


@dataclass
class Seen:
    """What the upstream received, for assertions."""

    requests: int = 0
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    keep: int = 50


class BadRequest(Exception):
    """A request the real API would refuse with a 400."""


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)] if text else []


def _text(content: Any) -> str:
    """The text of a message content, tool results included (their text is what is echoed)."""
    if isinstance(content, str):
        return content
    parts = [b.get("text", "") if b.get("type") == "text" else _text(b.get("content"))
             for b in content or () if b.get("type") in ("text", "tool_result")]
    return " ".join(parts)


def _check(body: dict[str, Any]) -> None:
    """Refuse, as the real API does, what a translation to Messages could get wrong."""
    if not isinstance(body.get("model"), str):
        raise BadRequest("model: Field required")
    if not isinstance(body.get("max_tokens"), int):
        raise BadRequest("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    prev: dict[str, Any] = {}
    for i, m in enumerate(messages):
        if m.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if m["role"] == prev.get("role"):
            raise BadRequest(f"messages.{i}: roles must alternate between user and assistant")
        content = m.get("content")
        blocks = [content] if isinstance(content, str) else content
        if not blocks:
            raise BadRequest(f"messages.{i}: all messages must have non-empty content")
        asked = {b.get("id") for b in prev.get("content") or () if isinstance(b, dict)
                 and b.get("type") == "tool_use"}
        for b in blocks:
            if isinstance(b, dict) and b.get("type") == "tool_result" \
                    and b.get("tool_use_id") not in asked:
                raise BadRequest(f"messages.{i}: unexpected tool_use_id in tool_result blocks")
        prev = m


class FakeAnthropicUpstream:
    """The Anthropic Messages API: POST /v1/messages and GET /v1/models."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "claude-fake",
                 behaviour: Behaviour | None = None, record: bool = True) -> None:
        self.name = name
        self.behaviour = behaviour or Behaviour()
        self.seen = Seen()
        self._record = record
        self.http = HttpServer(self.handle, host, port)

    @property
    def base_url(self) -> str:
        return self.http.url

    async def handle(self, req: RawRequest, out: Responder) -> None:
        b = self.behaviour
        body: Any = req.json() if req.method == "POST" else None
        self.seen.requests += 1
        if self._record and len(self.seen.bodies) < self.seen.keep:
            self.seen.bodies.append(body)
            self.seen.headers.append(req.headers)
            self.seen.paths.append(req.path)
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.fail_status and self.seen.requests % b.fail_every == 0:
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            await _error(out, b.fail_status, f"upstream failure {b.fail_status}", headers)
        elif "x-api-key" not in req.headers:
            await _error(out, 401, "x-api-key header is required")
        elif "anthropic-version" not in req.headers:
            await _error(out, 400, "anthropic-version: header is required")
        elif req.method == "GET" and req.path == "/v1/models":
            await out.send_json(200, {"data": [
                {"type": "model", "id": self.name, "display_name": "Claude (fake)",
                 "created_at": "2025-01-01T00:00:00Z"}],
                "has_more": False, "first_id": self.name, "last_id": self.name})
        elif req.method == "POST" and req.path == "/v1/messages":
            try:
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                _check(body)
            except BadRequest as exc:
                await _error(out, 400, str(exc))
                return
            await self._messages(body, out)
        else:
            await _error(out, 404, f"no route {req.method} {req.path}")

    def _answer(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None, int]:
        """Content blocks, stop_reason, stop_sequence and output token count of an answer."""
        last = next(m for m in reversed(body["messages"]) if m["role"] == "user")
        text = _text(last["content"])
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {}
        if tools and choice.get("type") in ("tool", "any"):
            name = choice.get("name") or tools[0]["name"]
            block = {"type": "tool_use", "id": f"toolu_{self.seen.requests:04d}", "name": name,
                     "input": {"q": text}}
            return [block], "tool_use", None, 8
        answer = self.behaviour.reply if self.behaviour.reply is not None else text
        reason, stopped = "end_turn", None
        for stop in body.get("stop_sequences") or ():
            at = answer.find(stop)
            if at >= 0:
                answer, reason, stopped = answer[:at], "stop_sequence", stop
        words = _words(answer)
        if len(words) > body["max_tokens"]:
            words, reason, stopped = words[:body["max_tokens"]], "max_tokens", None
        return [{"type": "text", "text": "".join(words)}], reason, stopped, len(words)

    async def _messages(self, body: dict[str, Any], out: Responder) -> None:
        content, reason, stopped, used = self._answer(body)
        prompt = sum(len(_text(m["content"]).split()) for m in body["messages"]) or 1
        usage = {"input_tokens": prompt, "output_tokens": used,
                 "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": self.behaviour.cache_read_tokens}
        message = {"id": f"msg_{self.seen.requests:04d}", "type": "message",
                   "role": "assistant", "model": self.name, "content": content,
                   "stop_reason": reason, "stop_sequence": stopped, "usage": usage}
        if not body.get("stream"):
            await self._send_message(out, message)
            return
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                  "usage": {**usage, "output_tokens": 1}}},
            {"type": "ping"},
        ]
        for i, block in enumerate(content):
            events += _block_events(i, block)
        events += [{"type": "message_delta", "delta": {"stop_reason": reason,
                                                       "stop_sequence": stopped},
                    "usage": {"output_tokens": used}},
                   {"type": "message_stop"}]
        await self._send_events(events, out)

    async def _send_message(self, out: Responder, message: dict[str, Any]) -> None:
        """Send a whole answer, broken as ``garbage`` says."""
        mode = self.behaviour.garbage
        if mode in ANTHROPIC_USAGE:
            message = {**message, "usage": ANTHROPIC_USAGE[mode]}
        elif mode is not None:
            sent = ANTHROPIC_MESSAGE[mode](message)
            if isinstance(sent, bytes):
                await out.send_bytes(200, sent, "application/json")
                return
            await out.send_json(200, sent)
            return
        await out.send_json(200, message)

    def _data(self, event: dict[str, Any], garbled: bool) -> bytes:
        """The data line of one event, broken as ``garbage`` says."""
        mode = self.behaviour.garbage
        if mode in ANTHROPIC_USAGE and event["type"] == "message_delta":
            return orjson.dumps({**event, "usage": ANTHROPIC_USAGE[mode]})
        if mode in ANTHROPIC and not garbled and event["type"] == ANTHROPIC[mode][0]:
            sent = ANTHROPIC[mode][1](event)
            return sent if isinstance(sent, bytes) else orjson.dumps(sent)
        return orjson.dumps(event)

    async def _send_events(self, events: list[dict[str, Any]], out: Responder) -> None:
        b = self.behaviour
        await out.start_stream()
        garbled = False
        for i, event in enumerate(events):
            if b.die_after_events is not None and i >= b.die_after_events:
                out.abort()
                return
            if b.error_after_events is not None and i >= b.error_after_events:
                event = {"type": "error",
                         "error": {"type": "overloaded_error", "message": "Overloaded"}}
            if b.event_delay_s and i:
                await asyncio.sleep(b.event_delay_s)
            data = self._data(event, garbled)
            garbled = garbled or data != orjson.dumps(event)
            await out.send_chunk(b"event: %b\ndata: %b\n\n" % (event["type"].encode(), data))
            if event["type"] == "error":
                break
        await out.end_stream()


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    """The content_block_start / _delta / _stop events that stream one content block."""
    if block["type"] == "tool_use":
        args = orjson.dumps(block["input"]).decode()
        cut = len(args) // 2
        deltas = [{"type": "input_json_delta", "partial_json": part}
                  for part in ("", args[:cut], args[cut:])]
        start = {**block, "input": {}}
    else:
        deltas = [{"type": "text_delta", "text": w} for w in _words(block["text"])]
        start = {"type": "text", "text": ""}
    return [{"type": "content_block_start", "index": index, "content_block": start},
            *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": index}]


async def _error(out: Responder, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
    kind = _ERROR_TYPES.get(status, "api_error")
    await out.send_json(status, {"type": "error", "error": {"type": kind, "message": message}},
                        headers)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a fake Anthropic Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--reply", default=None, help="A fixed answer instead of the echo.")
    args = parser.parse_args()

    async def run() -> None:
        up = FakeAnthropicUpstream(args.host, args.port, behaviour=Behaviour(reply=args.reply),
                                   record=False)
        await up.http.start()
        print(f"fake Anthropic upstream on {up.base_url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
