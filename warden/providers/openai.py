"""The ``openai`` provider: any OpenAI-compatible upstream (OpenAI, vLLM, TGI, Ollama, llama.cpp)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import aiohttp
import orjson
from pydantic import Field

from warden.config import Deployment
from warden.errors import UpstreamError
from warden.hookspecs import hookimpl
from warden.providers.base import (
    Completion,
    Provider,
    ProviderCall,
    ProviderParams,
    Usage,
)
from warden.providers.http import (
    Pool,
    check_credentials,
    drain,
    error_message,
    map_exception,
    raise_for_status,
    sse_events,
)
from warden.providers.validate import bad
from warden.visibility import Public, Secret

_PATHS = {"chat": "/chat/completions", "completion": "/completions", "embedding": "/embeddings"}


class OpenAIParams(ProviderParams):
    stream_usage: Public[bool] = Field(
        True, description="Ask the upstream for a final usage chunk (stream_options.include_usage)."
    )
    organization: Secret[str | None] = Field(None, description="OpenAI-Organization header.")


class OpenAIProvider(Provider):
    """Speaks the OpenAI wire format to the upstream: requests and answers pass through."""

    name = "openai"
    Params = OpenAIParams

    def __init__(self, deployment: Deployment, params: ProviderParams) -> None:
        super().__init__(deployment, params)
        assert isinstance(params, OpenAIParams)
        self._params = params
        self._base = (deployment.base_url or "https://api.openai.com/v1").rstrip("/")
        self._where = f"deployment '{deployment.id}'"
        headers = {"Content-Type": "application/json", **deployment.headers}
        if deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        if params.organization:
            headers["OpenAI-Organization"] = params.organization
        check_credentials(self._where, deployment.base_url, headers)
        self._headers = headers
        self._pool = Pool(deployment.max_connections)

    def _request_headers(self, call: ProviderCall) -> dict[str, str]:
        if not call.headers:
            return self._headers
        return {**self._headers, **call.headers}

    async def complete(self, call: ProviderCall) -> Completion:
        url = self._base + _PATHS[call.kind]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.timeouts.connect)
        try:
            async with asyncio.timeout(call.timeouts.total):
                async with self._pool.session().post(
                    url, data=orjson.dumps(call.body), headers=self._request_headers(call),
                    timeout=timeout,
                ) as resp:
                    await raise_for_status(resp, self._where)
                    raw = await resp.read()
            body = orjson.loads(raw)
        except Exception as exc:
            raise map_exception(exc, self._where) from exc
        if type(body) is not dict:
            raise bad(self._where, "the answer is not a JSON object")
        return Completion(body=body, usage=Usage.from_wire(body.get("usage")))

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        url = self._base + _PATHS[call.kind]
        body = call.body
        if self._params.stream_usage and call.kind != "embedding":
            body = {**body, "stream_options": {**(body.get("stream_options") or {}),
                                               "include_usage": True}}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + call.timeouts.total
        first_deadline = loop.time() + call.timeouts.first_byte
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.timeouts.connect)
        finished = False
        try:
            async with asyncio.timeout(call.timeouts.first_byte):
                resp = await self._pool.session().post(
                    url, data=orjson.dumps(body), headers=self._request_headers(call),
                    timeout=timeout,
                )
            try:
                await raise_for_status(resp, self._where)
                async for event, data in sse_events(resp, deadline, first_deadline,
                                                   self._where):
                    if data == b"[DONE]":
                        # The answer is whole: nothing after [DONE] is read as part of it.
                        finished = True
                        await drain(resp, deadline)
                        break
                    if event == "error":
                        self._stream_error(data)
                    chunk = orjson.loads(data)
                    if type(chunk) is not dict:
                        raise bad(self._where, "a stream chunk is not a JSON object")
                    choices = chunk.get("choices")
                    if choices is None and "error" in chunk:
                        self._stream_error(data)
                    # Only a well-formed finish is noted here; the chunk is checked as a whole
                    # by the caller (warden.providers.validate).
                    if type(choices) is list and any(
                            type(c) is dict and c.get("finish_reason") for c in choices):
                        finished = True
                    yield chunk
            finally:
                if finished and resp.content.is_eof():
                    resp.release()
                else:
                    resp.close()
        except Exception as exc:
            raise map_exception(exc, self._where) from exc
        if not finished:
            raise UpstreamError(f"{self._where}: upstream closed the stream before it finished",
                                code="upstream_stream_cut")

    def _stream_error(self, data: bytes) -> NoReturn:
        """Raise the error an upstream sent as a stream event."""
        message, _ = error_message(data, "no message")
        raise UpstreamError(f"{self._where}: upstream error mid-stream: {message}",
                            code="upstream_stream_error")

    async def check(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                async with self._pool.session().get(
                    self._base + "/models", headers=self._headers
                ) as resp:
                    await raise_for_status(resp, self._where)
                    await resp.read()
        except Exception as exc:
            raise map_exception(exc, self._where) from exc

    async def aclose(self) -> None:
        await self._pool.aclose()



@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(OpenAIProvider)
