"""The ``local`` provider: a GGUF model run in-process by llama.cpp, with continuous batching.

The model comes from the registry (an installed package) or a path; its SHA-256, and its
Ed25519 signature when the deployment carries one, are checked before it is loaded. Chat and
text completions, streamed or not, with stop sequences, ``max_tokens``, ``temperature``,
``top_p``, ``seed``, token usage and per-token logprobs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric
from pydantic import Field

from warden.config import Deployment
from warden.errors import InvalidRequest
from warden.hookspecs import hookimpl
from warden.lifecycle.integrity import ModelIntegrityError, SignedModelParams, verify
from warden.lifecycle.registry import BUILTIN, resolve
from warden.local.engine import EngineSettings, LlamaEngine
from warden.providers.base import Completion, Provider, ProviderCall, ProviderParams, Usage
from warden.visibility import Public


class LocalParams(ProviderParams, SignedModelParams):
    model: Public[str] = Field("smollm2-135m-instruct",
                       description="A registered model name, or the path of a GGUF file.")
    sha256: Public[str | None] = Field(None, description="Expected SHA-256 of a GGUF file given by path.")
    n_parallel: Public[int] = Field(4, ge=1, le=64, description="Requests decoded together (slots).")
    ctx_per_slot: Public[int] = Field(2048, ge=128, description="Context length of each slot, in tokens.")
    threads: Public[int | None] = Field(None, ge=1, description="CPU threads; default: all cores.")
    max_queue: Public[int] = Field(64, ge=0, description="Requests that may wait for a slot; more get 503.")
    default_max_tokens: Public[int] = Field(
        512, ge=1, description="max_tokens when the request sets none (bounds every request).")


class LocalProvider(Provider):
    """Serves chat and text completions from a model loaded in this process."""

    name = "local"
    Params = LocalParams

    def __init__(self, deployment: Deployment, params: ProviderParams) -> None:
        super().__init__(deployment, params)
        assert isinstance(params, LocalParams)
        self._p = params
        self._where = f"deployment '{deployment.id}'"
        self._signature = params.signature_spec(f"{self._where} (provider local)")
        # The name answers carry: the configured upstream name, else the registered name, else
        # the file's stem (never a local path).
        self._public = deployment.model or (
            params.model if params.model in BUILTIN else Path(params.model).stem)
        self._engine: LlamaEngine | None = None
        self._loading: asyncio.Task[LlamaEngine] | None = None

    async def start(self) -> None:
        await self._ready()

    async def _ready(self) -> LlamaEngine:
        if self._engine is not None:
            return self._engine
        if self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(self._load())
        self._engine = await asyncio.shield(self._loading)
        return self._engine

    async def _load(self) -> LlamaEngine:
        path, expected = resolve(self._p.model, self._p.sha256)
        try:
            self.integrity = await asyncio.to_thread(verify, path, expected, self._where,
                                                     self._signature)
        except ModelIntegrityError as exc:
            self.integrity = exc.outcome
            raise
        engine = LlamaEngine(EngineSettings(
            path=Path(path), n_parallel=self._p.n_parallel, ctx_per_slot=self._p.ctx_per_slot,
            threads=self._p.threads or len(os.sched_getaffinity(0)) or 1, max_queue=self._p.max_queue,
        ), self._where)
        await engine.load()
        return engine

    def _body(self, call: ProviderCall) -> dict[str, Any]:
        if call.kind == "embedding":
            raise InvalidRequest(
                f"{self._where}: the local provider serves chat and text completions; use a "
                "'local-embedding' deployment for embeddings.", param="model")
        body = dict(call.body)
        if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
            body["max_tokens"] = self._p.default_max_tokens
        elif body.get("max_tokens") is None:
            body["max_tokens"] = body["max_completion_tokens"]
        return body

    async def complete(self, call: ProviderCall) -> Completion:
        body = self._body(call)
        engine = await self._ready()
        result = await engine.complete(call.kind, body)
        result["model"] = self._public
        result.pop("timings", None)
        return Completion(body=result, usage=Usage.from_wire(result.get("usage")))

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        body = self._body(call)
        engine = await self._ready()
        chunks = engine.stream(call.kind, body)
        try:
            async for chunk in chunks:
                chunk["model"] = self._public
                chunk.pop("timings", None)
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def check(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._ready(), timeout_s)

    async def collect(self) -> Iterator[Metric]:
        if self._engine is None:
            return iter(())
        await self._engine.refresh_kv_usage()
        return self._engine.stats.families(self._public, self.deployment.id)

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self._engine is not None:
            await self._engine.aclose()
            self._engine = None


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(LocalProvider)
