"""A minimal, fast HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies,
chunked responses). Small enough to read, fast enough to never be the bottleneck of a benchmark,
and able to misbehave on purpose (cut a stream, drop a connection)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 529: "Overloaded"}


@dataclass(slots=True)
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body) if self.body else None


@dataclass(slots=True)
class Responder:
    """Writes one response on a connection."""

    writer: asyncio.StreamWriter
    sent_headers: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in {**self.extra_headers, **headers}.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send_json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
        body = orjson.dumps(data)
        head = self._head(status, {"content-type": "application/json",
                                   "content-length": str(len(body)), **(headers or {})})
        self.writer.write(head + body)
        self.sent_headers = True
        await self.writer.drain()

    async def send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.writer.write(self._head(status, {"content-type": content_type,
                                              "content-length": str(len(body))}) + body)
        self.sent_headers = True
        await self.writer.drain()

    async def start_stream(self, status: int = 200, content_type: str = "text/event-stream") -> None:
        self.writer.write(self._head(status, {"content-type": content_type,
                                              "transfer-encoding": "chunked",
                                              "cache-control": "no-cache"}))
        self.sent_headers = True

    async def send_chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        await self.writer.drain()

    async def end_stream(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def abort(self) -> None:
        """Drop the connection without a proper ending (a crash, as the client sees it)."""
        self.writer.transport.abort()


Handler = Callable[[RawRequest, Responder], Awaitable[None]]


class HttpServer:
    """Serves ``handler`` on host:port (port 0 picks a free one)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every open connection at once (like a killed process)."""
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(n) if n else b""
                responder = Responder(writer)
                await self._handler(RawRequest(method, path, headers, body), responder)
                if writer.transport.is_closing():
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()


class ServerThread:
    """Runs an HttpServer on its own event loop in a daemon thread (for synchronous tests)."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def kill(self) -> None:
        """Stop the server but keep the loop, so it can be started again on the same port."""
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)

    async def _shutdown(self) -> None:
        await self.server.stop()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def restart(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()
