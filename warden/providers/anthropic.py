"""The ``anthropic`` provider: Anthropic's Messages API behind the OpenAI chat wire format.

Requests and answers are translated both ways (``warden.providers.anthropic_wire``), streams
included. Only chat completions are served: Anthropic has no text-completion or embedding API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
from pydantic import Field

from warden.config import Deployment
from warden.errors import InvalidRequest, UpstreamError, UpstreamStatus
from warden.hookspecs import hookimpl
from warden.providers.anthropic_wire import (
    StreamTranslator,
    UpstreamOverloaded,
    from_messages_response,
    to_messages_request,
    usage_of,
)
from warden.providers.base import Completion, Provider, ProviderCall, ProviderParams
from warden.providers.http import (
    Pool,
    check_credentials,
    drain,
    map_exception,
    raise_for_status,
    sse_events,
)
from warden.providers.validate import bad
from warden.visibility import Public


class AnthropicParams(ProviderParams):
    anthropic_version: Public[str] = Field("2023-06-01", description="The anthropic-version header.")
    default_max_tokens: Public[int] = Field(
        4096, ge=1,
        description="max_tokens sent when the request sets neither max_tokens nor "
                    "max_completion_tokens (Anthropic requires one).",
    )
    beta: Public[tuple[str, ...]] = Field((), description="Beta features, sent as anthropic-beta.")


class AnthropicProvider(Provider):
    """Speaks the Messages API (``/v1/messages``) to the upstream."""

    name = "anthropic"
    Params = AnthropicParams

    def __init__(self, deployment: Deployment, params: ProviderParams) -> None:
        super().__init__(deployment, params)
        assert isinstance(params, AnthropicParams)
        self._params = params
        # base_url may be given with or without the /v1 suffix; paths below add it.
        base = (deployment.base_url or "https://api.anthropic.com").rstrip("/")
        self._base = base.removesuffix("/v1")
        self._where = f"deployment '{deployment.id}'"
        headers = {"content-type": "application/json",
                   "anthropic-version": params.anthropic_version}
        if params.beta:
            headers["anthropic-beta"] = ",".join(params.beta)
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        self._headers = {**headers, **deployment.headers}
        check_credentials(self._where, deployment.base_url, self._headers)
        self._pool = Pool(deployment.max_connections)

    def _request_headers(self, call: ProviderCall) -> dict[str, str]:
        if not call.headers:
            return self._headers
        return {**self._headers, **call.headers}

    def _payload(self, call: ProviderCall) -> bytes:
        if call.kind != "chat":
            path = "/v1/completions" if call.kind == "completion" else "/v1/embeddings"
            raise InvalidRequest(
                f"The anthropic provider ({self._where}) serves only chat completions; send "
                f"this request to /v1/chat/completions, or use {path} with a model served by "
                "another provider.", code="unsupported_endpoint")
        body = to_messages_request({**call.body, "stream": call.stream},
                                   default_max_tokens=self._params.default_max_tokens)
        return orjson.dumps(body)

    async def _raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
        try:
            await raise_for_status(resp, self._where)
        except UpstreamStatus as exc:
            if exc.upstream_status == 529:
                raise UpstreamOverloaded(exc.message, body=exc.upstream_body,
                                         retry_after=exc.retry_after) from exc
            raise

    async def complete(self, call: ProviderCall) -> Completion:
        payload = self._payload(call)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.timeouts.connect)
        try:
            async with asyncio.timeout(call.timeouts.total):
                async with self._pool.session().post(
                    self._base + "/v1/messages", data=payload,
                    headers=self._request_headers(call), timeout=timeout,
                ) as resp:
                    await self._raise_for_status(resp)
                    raw = await resp.read()
            data = orjson.loads(raw)
        except Exception as exc:  # every transport error is mapped, none swallowed
            raise map_exception(exc, self._where) from exc
        if type(data) is not dict or type(data.get("content")) is not list:
            raise bad(self._where, "the answer is not an Anthropic Messages object; check that "
                                   "base_url points at the Anthropic API")
        return Completion(body=from_messages_response(data, self._where),
                          usage=usage_of(data.get("usage")))

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        payload = self._payload(call)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + call.timeouts.total
        first_deadline = loop.time() + call.timeouts.first_byte
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.timeouts.connect)
        translator = StreamTranslator(self._where)
        try:
            async with asyncio.timeout(call.timeouts.first_byte):
                resp = await self._pool.session().post(
                    self._base + "/v1/messages", data=payload,
                    headers=self._request_headers(call), timeout=timeout,
                )
            try:
                await self._raise_for_status(resp)
                async for _event, data in sse_events(resp, deadline, first_deadline,
                                                    self._where):
                    for chunk in translator.feed(orjson.loads(data)):
                        yield chunk
                    if translator.done:
                        await drain(resp, deadline)
                        break
            finally:
                if translator.done and resp.content.is_eof():
                    resp.release()
                else:
                    resp.close()
        except Exception as exc:  # every transport error is mapped, none swallowed
            raise map_exception(exc, self._where) from exc
        if not translator.done:
            raise UpstreamError(f"{self._where}: upstream closed the stream before message_stop",
                                code="upstream_stream_cut")

    async def check(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                async with self._pool.session().get(
                    self._base + "/v1/models", headers=self._headers
                ) as resp:
                    await self._raise_for_status(resp)
                    await resp.read()
        except Exception as exc:  # mapped to a WardenError for the health checker
            raise map_exception(exc, self._where) from exc

    async def aclose(self) -> None:
        await self._pool.aclose()



@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(AnthropicProvider)
