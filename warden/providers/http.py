"""Shared upstream HTTP plumbing: pooled keep-alive sessions, error mapping, SSE parsing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from warden.errors import (
    ConfigError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
    WardenError,
)

_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def hide_credentials(text: str) -> str:
    """``text`` with the user:password of any URL in it replaced by ``***``."""
    return _USERINFO.sub("***@", text) if "@" in text else text


def check_credentials(where: str, base_url: str | None, headers: Mapping[str, str]) -> None:
    """Refuse a base_url with user:password when an Authorization header is sent too: the
    HTTP client cannot send both, and would fail every request."""
    if not base_url or "@" not in base_url:
        return
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return  # not a URL at all: the first request says so
    if (parts.username or parts.password) and any(k.lower() == "authorization" for k in headers):
        raise ConfigError(
            f"{where}: base_url carries credentials (user:password@) and an Authorization "
            "header is sent too (from api_key or headers); keep one of them")


class Pool:
    """A lazily created aiohttp session with a bounded keep-alive connection pool."""

    def __init__(self, max_connections: int) -> None:
        self._max = max_connections
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max, limit_per_host=self._max, keepalive_timeout=30,
                ttl_dns_cache=300, enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                json_serialize=lambda o: orjson.dumps(o).decode(), auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header, when given as a number."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass  # fall through to the seconds form
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: not worth parsing for a hint


def error_message(body: bytes, fallback: str) -> tuple[str, Any]:
    """The upstream's own error message (OpenAI or Anthropic shape) and the parsed body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:500] or fallback), None
    if isinstance(data, dict):
        # Cut to a size fit for an error message: the upstream's text is not ours to forward.
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:500], data
        if isinstance(err, str):
            return err[:500], data
        if isinstance(data.get("message"), str):
            return data["message"][:500], data
    return fallback, data


async def raise_for_status(resp: aiohttp.ClientResponse, where: str) -> None:
    """Raise UpstreamStatus for an error answer, with the upstream's message."""
    if resp.status < 400:
        return
    body = await resp.read()
    message, data = error_message(body, f"upstream answered HTTP {resp.status}")
    raise UpstreamStatus(
        f"{where}: {message}", upstream_status=resp.status, body=data,
        retry_after=retry_after(resp.headers),
    )


def map_exception(exc: BaseException, where: str) -> WardenError:
    """Turn a transport exception into a WardenError naming the deployment."""
    if isinstance(exc, WardenError):
        return exc
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{where}: upstream timed out", code="upstream_timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(f"{where}: cannot connect to upstream ({exc.os_error})",
                             code="upstream_connect_error")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError(f"{where}: upstream connection closed in the middle of the answer",
                             code="upstream_stream_cut")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamError(f"{where}: upstream closed the connection", code="upstream_disconnected")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamError(f"{where}: upstream transport error: {hide_credentials(str(exc))}",
                             code="upstream_error")
    if isinstance(exc, orjson.JSONDecodeError):
        return UpstreamBadResponse(f"{where}: upstream sent invalid JSON")
    if isinstance(exc, ValueError):
        # The HTTP client refused to send the request (a header value it cannot send, say).
        return UpstreamError(f"{where}: the request could not be sent upstream: "
                             f"{hide_credentials(str(exc))}", code="upstream_request_error")
    raise exc


MAX_EVENT_BYTES = 8 << 20
"""The largest stream event read: an upstream sending more without an end is broken."""


async def sse_events(
    resp: aiohttp.ClientResponse, deadline: float, first_deadline: float | None = None,
    where: str = "upstream",
) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield ``(event, data)`` pairs of a server-sent-event stream until it ends.

    Reads are bounded by ``deadline`` (a loop time), and until the first event arrives by
    ``first_deadline`` too; running past either raises TimeoutError. Multi-line ``data:``
    fields are joined with newlines, as the SSE specification says. An event (or a line) of
    more than ``MAX_EVENT_BYTES`` raises UpstreamBadResponse instead of filling the memory.
    """
    loop = asyncio.get_running_loop()
    buf = b""
    event: str | None = None
    data: list[bytes] = []
    size = 0
    limit = min(deadline, first_deadline) if first_deadline is not None else deadline
    content = resp.content
    ended = False
    while not ended:
        # Take what is already buffered without arming a timer; wait (bounded) only when empty.
        chunk = content.read_nowait() if not content.at_eof() else b""
        if not chunk and not content.at_eof():
            remaining = limit - loop.time()
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                chunk = await content.readany()
        if not chunk:
            ended = True
            buf += b"\n\n"  # flush a last event that had no blank line after it
        else:
            buf += chunk
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            line = buf[:i].rstrip(b"\r")
            buf = buf[i + 1:]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                    limit = deadline
                event, data, size = None, [], 0
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
                size += len(value)
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
        if size + len(buf) > MAX_EVENT_BYTES:
            raise UpstreamBadResponse(f"{where}: upstream sent a stream event of more than "
                                      f"{MAX_EVENT_BYTES >> 20} MiB")


DRAIN_S = 0.25
"""How long a finished stream's leftovers are read, so that its connection can be reused."""


async def drain(resp: aiohttp.ClientResponse, deadline: float) -> bool:
    """Read what is left of a finished stream so its connection can go back to the pool.

    The answer is complete already: bytes or silence after its end must not fail it. Reading
    stops after ``DRAIN_S`` (or at ``deadline``) and returns False; the caller then closes the
    connection instead of reusing it. True when the stream reached its end."""
    content = resp.content
    if content.at_eof():
        return True
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(min(deadline, loop.time() + DRAIN_S)):
            while await content.readany():
                pass
    except (TimeoutError, aiohttp.ClientError):
        return False
    return content.at_eof()
