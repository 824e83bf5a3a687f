"""The HTTP protocol of the gateway's listener: uvicorn's, with a bound on how long a request
head may take and on how many connections may be open.

uvicorn closes a connection that stays idle between requests (``timeout_keep_alive``), but not
one that is slow to send its request line and headers: a client that opens connections and
sends half a request ("slowloris") holds each of them, and its buffers, for as long as it
likes. Here every request head must be complete within ``header_timeout_s`` of its first byte
(of the connection's opening, for the first request); past it the connection gets a 408 and is
closed. A connection opened while ``max_connections`` are already open gets a 503 and is
closed at once. The body of a request is bounded separately, by ``server.max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("warden.listener")

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_FULL = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Bounds:
    """The head timer and the connection bound, shared by both protocol classes."""

    header_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int | None] = None
    _head_timer: asyncio.TimerHandle | None = None

    def _admit(self, transport: asyncio.Transport, open_now: int,
               loop: asyncio.AbstractEventLoop) -> bool:
        """Whether the new connection may stay; if so, its head timer starts now."""
        if self.max_connections is not None and open_now > self.max_connections:
            log.warning("refused a connection: %d open, server.max_connections is %d",
                        open_now - 1, self.max_connections)
            transport.write(_FULL)
            transport.close()
            return False
        self._arm_head(transport, loop)
        return True

    def _arm_head(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        if self._head_timer is None and not transport.is_closing():
            self._head_timer = loop.call_later(self.header_timeout_s, self._head_timed_out,
                                               transport)

    def _disarm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self, transport: asyncio.Transport) -> None:
        self._head_timer = None
        if not transport.is_closing():
            transport.write(_TIMEOUT)
            transport.close()


class BoundedHttpTools(_Bounds, HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admit(transport, len(self.connections), self.loop)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head(self.transport, self.loop)

    def on_headers_complete(self) -> None:
        self._disarm_head()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)


class BoundedH11(_Bounds, H11Protocol):
    """uvicorn's h11 protocol with the bounds of the module docstring."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admit(transport, len(self.connections), self.loop)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # a request head begun, not yet complete
            self._arm_head(self.transport, self.loop)
        else:
            self._disarm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)


def protocol_class(httptools: bool, header_timeout_s: float,
                   max_connections: int | None) -> type[Any]:
    """The protocol class for uvicorn's ``http`` setting, with these bounds."""
    base: type[_Bounds] = BoundedHttpTools if httptools else BoundedH11
    return type(base.__name__, (base,), {"header_timeout_s": header_timeout_s,
                                         "max_connections": max_connections})
