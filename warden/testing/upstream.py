"""A fake OpenAI-compatible upstream server: a real server on loopback for tests and benchmarks.

It echoes the last user message, word by word, like the ``fake`` provider, and can be told to
fail: an error status on every Nth request, a delay, a stream cut after N chunks, a malformed
answer or chunk (``garbage``: the modes of ``warden.testing.hostile``), or bytes and silence
after a stream's ``[DONE]``.
``python -m warden.testing.upstream --port 9000`` runs one on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from warden.testing.hostile import ERROR_EVENT, OPENAI, OPENAI_USAGE
from warden.testing.httpserver import HttpServer, RawRequest, Responder


@dataclass
class Behaviour:
    """How the upstream misbehaves; change fields at any time, they apply to the next request."""

    fail_status: int | None = None
    fail_every: int = 1
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    die_after_chunks: int | None = None
    reply: str | None = None
    echo_role: str = "user"  # whose last message the answer repeats ("system": a leaky model)
    retry_after: str | None = None
    garbage: str | None = None  # a mode of hostile.OPENAI or hostile.OPENAI_USAGE
    garbage_at: int = 0  # the stream chunk the mode breaks (0: the first; usage modes: the last)
    after_done: bytes = b""  # sent after a stream's [DONE]
    linger_s: float = 0.0  # silence after a stream's [DONE] before it ends
    usage: dict[str, Any] | None = None  # reported instead of the counted usage of chat answers


@dataclass
class Seen:
    """What the upstream received, for assertions."""

    requests: int = 0
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    keep: int = 50


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)] if text else [""]


class FakeOpenAIUpstream:
    """The OpenAI wire protocol: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "upstream-model",
                 behaviour: Behaviour | None = None, record: bool = True) -> None:
        self.name = name
        self.behaviour = behaviour or Behaviour()
        self.seen = Seen()
        self._record = record
        self.http = HttpServer(self.handle, host, port)

    @property
    def base_url(self) -> str:
        return self.http.url + "/v1"

    async def handle(self, req: RawRequest, out: Responder) -> None:
        b = self.behaviour
        body: Any = req.json() if req.method == "POST" else None
        self.seen.requests += 1
        if self._record and len(self.seen.bodies) < self.seen.keep:
            self.seen.bodies.append(body)
            self.seen.headers.append(req.headers)
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.fail_status and self.seen.requests % b.fail_every == 0:
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            await out.send_json(b.fail_status, {"error": {
                "message": f"upstream failure {b.fail_status}", "type": "server_error",
                "param": None, "code": None}}, headers)
            return
        if req.path == "/v1/models":
            await out.send_json(200, {"object": "list", "data": [
                {"id": self.name, "object": "model", "created": 0, "owned_by": "fake"}]})
            return
        if req.path == "/health":
            await out.send_json(200, {"status": "ok"})
            return
        if not isinstance(body, dict):
            await out.send_json(400, {"error": {"message": "body must be a JSON object",
                                                "type": "invalid_request_error"}})
            return
        if req.path == "/v1/chat/completions":
            await self._chat(body, out)
        elif req.path == "/v1/completions":
            await self._completion(body, out)
        elif req.path == "/v1/embeddings":
            inputs = body.get("input")
            items = [inputs] if isinstance(inputs, str) else list(inputs or [])
            await self._send_answer(out, {"object": "list", "model": body.get("model"), "data": [
                {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, 0.3]}
                for i in range(len(items))], "usage": {"prompt_tokens": len(items),
                                                         "total_tokens": len(items)}})
        else:
            await out.send_json(404, {"error": {"message": f"no route {req.path}",
                                                "type": "invalid_request_error"}})

    def _answer(self, body: dict[str, Any], text: str) -> tuple[list[str], str]:
        words = _words(self.behaviour.reply if self.behaviour.reply is not None else text)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and len(words) > limit:
            return words[:limit], "length"
        return words, "stop"

    async def _chat(self, body: dict[str, Any], out: Responder) -> None:
        messages = body.get("messages") or []
        last: dict[str, Any] = next(
            (m for m in reversed(messages) if m.get("role") == self.behaviour.echo_role), {})
        content = last.get("content")
        text = content if isinstance(content, str) else ""
        words, finish = self._answer(body, text)
        usage = self.behaviour.usage or {
            "prompt_tokens": max(1, len(text.split())), "completion_tokens": len(words),
            "total_tokens": max(1, len(text.split())) + len(words)}
        rid, created, model = f"chatcmpl-up{self.seen.requests}", int(time.time()), self.name
        message: dict[str, Any] = {"role": "assistant", "content": "".join(words)}
        if body.get("tools") and body.get("tool_choice") not in (None, "none", "auto"):
            fn = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": fn, "arguments": orjson.dumps({"q": text}).decode()}}]}
            finish = "tool_calls"
        if not body.get("stream"):
            n = int(body.get("n") or 1)
            await self._send_answer(out, {
                "id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": i, "message": message, "finish_reason": finish,
                             "logprobs": None} for i in range(n)],
                "usage": usage, "system_fingerprint": "fp_fake"})
            return
        await out.start_stream()
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
        chunks: list[dict[str, Any]] = [{**base, "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        if message.get("tool_calls"):
            # A tool call streams as OpenAI streams it: id and name first, then the arguments
            # a few words at a time.
            call = message["tool_calls"][0]
            chunks[0]["choices"][0]["delta"] = {"role": "assistant", "content": None,
                                                "tool_calls": [{
                                                    "index": 0, "id": call["id"], "type": "function",
                                                    "function": {"name": call["function"]["name"],
                                                                 "arguments": ""}}]}
            words = _words(call["function"]["arguments"])
            chunks += [{**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": w}}]}, "finish_reason": None}]}
                for w in words]
        else:
            chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w},
                                             "finish_reason": None}]} for w in words]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        await self._send_events(chunks, out)

    async def _completion(self, body: dict[str, Any], out: Responder) -> None:
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else ""
        words, finish = self._answer(body, text)
        usage = {"prompt_tokens": max(1, len(text.split())), "completion_tokens": len(words),
                 "total_tokens": max(1, len(text.split())) + len(words)}
        base = {"id": f"cmpl-up{self.seen.requests}", "object": "text_completion",
                "created": int(time.time()), "model": self.name}
        if not body.get("stream"):
            await self._send_answer(out, {**base, "choices": [
                {"index": 0, "text": "".join(words), "finish_reason": finish, "logprobs": None}],
                "usage": usage})
            return
        await out.start_stream()
        chunks: list[dict[str, Any]] = [{**base, "choices": [
            {"index": 0, "text": w, "finish_reason": None, "logprobs": None}]} for w in words]
        chunks.append({**base, "choices": [{"index": 0, "text": "", "finish_reason": finish,
                                            "logprobs": None}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        await self._send_events(chunks, out)

    async def _send_answer(self, out: Responder, answer: dict[str, Any]) -> None:
        """Send a whole answer, broken as ``garbage`` says."""
        mode = self.behaviour.garbage
        if mode in OPENAI_USAGE:
            await out.send_json(200, {**answer, "usage": OPENAI_USAGE[mode]})
        elif mode is not None:
            sent = OPENAI[mode](answer)
            if isinstance(sent, bytes):
                await out.send_bytes(200, sent.removeprefix(ERROR_EVENT), "application/json")
            else:
                await out.send_json(200, sent)
        else:
            await out.send_json(200, answer)

    def _frames(self, chunks: list[dict[str, Any]]) -> list[bytes]:
        """The SSE frames of a stream's chunks, one broken as ``garbage`` says."""
        mode = self.behaviour.garbage
        if mode in OPENAI_USAGE:
            chunks = [{**c, "usage": OPENAI_USAGE[mode]} if "usage" in c else c for c in chunks]
        frames = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]
        if mode is not None and mode not in OPENAI_USAGE:
            at = min(self.behaviour.garbage_at, len(chunks) - 1)
            sent = OPENAI[mode](chunks[at])
            data = sent if isinstance(sent, bytes) else orjson.dumps(sent)
            frames[at] = (data if data.startswith(ERROR_EVENT) else b"data: " + data) + b"\n\n"
        return frames

    async def _send_events(self, chunks: list[dict[str, Any]], out: Responder) -> None:
        b = self.behaviour
        for i, frame in enumerate(self._frames(chunks)):
            if b.die_after_chunks is not None and i >= b.die_after_chunks:
                out.abort()
                return
            if b.chunk_delay_s and i:
                await asyncio.sleep(b.chunk_delay_s)
            await out.send_chunk(frame)
        await out.send_chunk(b"data: [DONE]\n\n")
        if b.after_done:
            await out.send_chunk(b.after_done)
        if b.linger_s:
            await asyncio.sleep(b.linger_s)
        await out.end_stream()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a fake OpenAI-compatible upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--reply", default=None, help="A fixed answer instead of the echo.")
    args = parser.parse_args()

    async def run() -> None:
        up = FakeOpenAIUpstream(args.host, args.port, behaviour=Behaviour(reply=args.reply),
                                record=False)
        await up.http.start()
        print(f"fake upstream on {up.base_url}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop
        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


if __name__ == "__main__":
    main()
