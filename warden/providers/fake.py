"""The ``fake`` provider: a deterministic in-process model for tests, demos and benchmarks.

It echoes the last user message (or the prompt), one word a token, honouring ``max_tokens``,
``n`` and ``stop``. Params set the time to first token, the pace in tokens per second, and a
failure rate with the status failures carry.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import Field

from warden.config import Deployment
from warden.errors import UpstreamStatus
from warden.hookspecs import hookimpl
from warden.providers.base import Completion, Provider, ProviderCall, ProviderParams, Usage
from warden.visibility import Public

_TOKEN = re.compile(r"\s*\S+")


class FakeParams(ProviderParams):
    ttft_ms: Public[float] = Field(0.0, ge=0, description="Delay before the first token.")
    tokens_per_s: Public[float] = Field(0.0, ge=0, description="Pace of streamed tokens; 0 = no delay.")
    failure_rate: Public[float] = Field(0.0, ge=0, le=1, description="Share of requests that fail.")
    failure_status: Public[int] = Field(500, ge=400, le=599, description="HTTP status of a failure.")
    seed: Public[int | None] = Field(None, description="Seed of the failure draw, for repeatable runs.")
    reply: Public[str | None] = Field(None, description="A fixed answer instead of the echo.")
    embedding_dim: Public[int] = Field(16, ge=1, le=4096, description="Length of fake embeddings.")


def tokenize(text: str) -> list[str]:
    """Split text into word tokens that keep their leading whitespace."""
    return _TOKEN.findall(text)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _apply_stop(tokens: list[str], stop: Any) -> tuple[list[str], bool]:
    """Cut the token list where a stop sequence would start; True when it was cut."""
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    if not stops:
        return tokens, False
    text = "".join(tokens)
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut < 0:
        return tokens, False
    out: list[str] = []
    used = 0
    for tok in tokens:
        if used + len(tok) > cut:
            rest = tok[: cut - used]
            if rest:
                out.append(rest)
            break
        out.append(tok)
        used += len(tok)
    return out, True


class FakeProvider(Provider):
    """Answers from memory; never touches the network."""

    name = "fake"
    Params = FakeParams

    def __init__(self, deployment: Deployment, params: ProviderParams) -> None:
        super().__init__(deployment, params)
        assert isinstance(params, FakeParams)
        self._p = params
        self._rng = random.Random(params.seed)
        self._model = deployment.model or deployment.id

    # -- shaping -----------------------------------------------------------------------------

    def _maybe_fail(self) -> None:
        if self._p.failure_rate and self._rng.random() < self._p.failure_rate:
            raise UpstreamStatus(
                f"deployment '{self.deployment.id}': simulated failure",
                upstream_status=self._p.failure_status,
            )

    def _source(self, call: ProviderCall) -> tuple[str, int]:
        body = call.body
        if call.kind == "chat":
            messages = body.get("messages") or []
            prompt_tokens = sum(len(tokenize(_text_of(m.get("content")))) for m in messages)
            last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
            return _text_of(last.get("content")) if last else "", prompt_tokens
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
        return text, len(tokenize(text))

    def _choice_tokens(self, call: ProviderCall) -> tuple[list[str], str, int]:
        text, prompt_tokens = self._source(call)
        tokens = tokenize(self._p.reply if self._p.reply is not None else text) or [""]
        limit = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
        finish = "stop"
        tokens, stopped = _apply_stop(tokens, call.body.get("stop"))
        if isinstance(limit, int) and len(tokens) > limit:
            tokens, finish = tokens[:limit], "length"
        elif stopped:
            finish = "stop"
        return tokens, finish, prompt_tokens

    def _logprobs(self, tokens: list[str], top: int) -> dict[str, Any]:
        content = []
        for i, tok in enumerate(tokens):
            lp = -0.05 * (i % 7)
            alts = [{"token": tok, "logprob": lp, "bytes": list(tok.encode())}]
            alts += [{"token": f"{tok}~{k}", "logprob": lp - k, "bytes": None}
                     for k in range(1, top)]
            content.append({"token": tok, "logprob": lp, "bytes": list(tok.encode()),
                            "top_logprobs": alts[:top]})
        return {"content": content}

    # -- answers -----------------------------------------------------------------------------

    async def complete(self, call: ProviderCall) -> Completion:
        if self._p.ttft_ms:
            await asyncio.sleep(self._p.ttft_ms / 1000)
        self._maybe_fail()
        if call.kind == "embedding":
            return self._embed(call)
        tokens, finish, prompt_tokens = self._choice_tokens(call)
        n = int(call.body.get("n") or 1)
        text = "".join(tokens)
        created = int(time.time())
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=len(tokens) * n)
        if call.kind == "chat":
            choices = []
            for i in range(n):
                choice: dict[str, Any] = {
                    "index": i, "message": {"role": "assistant", "content": text},
                    "finish_reason": finish, "logprobs": None,
                }
                if call.body.get("logprobs"):
                    choice["logprobs"] = self._logprobs(tokens, int(call.body.get("top_logprobs") or 0))
                choices.append(choice)
            body = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion",
                    "created": created, "model": self._model, "choices": choices,
                    "usage": usage.to_wire()}
        else:
            body = {"id": f"cmpl-{call.request_id}", "object": "text_completion",
                    "created": created, "model": self._model,
                    "choices": [{"index": i, "text": text, "finish_reason": finish,
                                 "logprobs": None} for i in range(n)],
                    "usage": usage.to_wire()}
        return Completion(body=body, usage=usage)

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        if self._p.ttft_ms:
            await asyncio.sleep(self._p.ttft_ms / 1000)
        self._maybe_fail()
        tokens, finish, prompt_tokens = self._choice_tokens(call)
        n = int(call.body.get("n") or 1)
        chat = call.kind == "chat"
        base = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{call.request_id}",
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": self._model}
        delay = 1 / self._p.tokens_per_s if self._p.tokens_per_s else 0.0
        want_logprobs = bool(call.body.get("logprobs")) and chat
        top = int(call.body.get("top_logprobs") or 0)
        if chat:
            yield {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None, "logprobs": None}
                                       for i in range(n)]}
        for pos, tok in enumerate(tokens):
            if delay and pos:
                await asyncio.sleep(delay)
            choices = []
            for i in range(n):
                if chat:
                    c: dict[str, Any] = {"index": i, "delta": {"content": tok},
                                         "finish_reason": None, "logprobs": None}
                    if want_logprobs:
                        c["logprobs"] = {"content": self._logprobs([tok], top)["content"]}
                else:
                    c = {"index": i, "text": tok, "finish_reason": None, "logprobs": None}
                choices.append(c)
            yield {**base, "choices": choices}
        final_key = "delta" if chat else "text"
        yield {**base, "choices": [{"index": i, final_key: {} if chat else "",
                                    "finish_reason": finish, "logprobs": None}
                                   for i in range(n)]}
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=len(tokens) * n)
        yield {**base, "choices": [], "usage": usage.to_wire()}

    def _embed(self, call: ProviderCall) -> Completion:
        raw = call.body.get("input")
        inputs = [raw] if isinstance(raw, str) or (isinstance(raw, list) and raw
                                                   and isinstance(raw[0], int)) else list(raw or [])
        dim = int(call.body.get("dimensions") or self._p.embedding_dim)
        data, tokens = [], 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(tokenize(text)) if isinstance(item, str) else len(item)
            data.append({"object": "embedding", "index": i, "embedding": _vector(text, dim)})
        usage = Usage(prompt_tokens=tokens)
        return Completion(
            body={"object": "list", "data": data, "model": self._model,
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
            usage=usage,
        )


def _vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector derived from the text's hash."""
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    out = out[:dim]
    norm = math.sqrt(sum(v * v for v in out)) or 1.0
    return [v / norm for v in out]


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(FakeProvider)
