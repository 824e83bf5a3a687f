"""A hostile OpenAI-compatible upstream: a real server on loopback that answers every POST with
whatever bytes a test scripted, for fuzzing how the gateway reads upstream answers.

The test sets ``upstream.reply`` before each request; the reply applies to every POST until it is
changed. The body is sent as given: chunked (each piece one HTTP chunk, as a server streams
server-sent events) or with a Content-Length, and the connection may be cut instead of ending
the body. Nothing is parsed or repaired on the way out: non-JSON data lines, broken UTF-8, a
JSON content type on a stream, garbage after ``[DONE]`` are all the test's to choose.
GET /v1/models and GET /health answer normally, so that probes see a live server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warden.testing.httpserver import HttpServer, RawRequest, Responder


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a content type (None: no such header) and the body's
    pieces; ``chunked`` sends them as HTTP chunks, else as one body with a Content-Length;
    ``abort`` drops the connection after the pieces instead of ending the body (with a
    Content-Length, one that promised more than was sent)."""

    status: int = 200
    content_type: str | None = "text/event-stream"
    pieces: tuple[bytes, ...] = ()
    chunked: bool = True
    abort: bool = False

    def describe(self) -> str:
        """A short, readable account of the reply, for assertion messages."""
        body = b"".join(self.pieces)
        shown = body[:600] + (b"..." if len(body) > 600 else b"")
        return (f"upstream {self.status} content-type={self.content_type!r} "
                f"{'chunked' if self.chunked else 'content-length'}"
                f"{' then cut' if self.abort else ''}: {shown!r}")


@dataclass
class HostileUpstream:
    """Answers each POST with ``reply``; counts what it was asked."""

    host: str = "127.0.0.1"
    port: int = 0
    reply: Reply = field(default_factory=Reply)
    requests: int = 0
    http: HttpServer = field(init=False)

    def __post_init__(self) -> None:
        self.http = HttpServer(self.handle, self.host, self.port)

    @property
    def base_url(self) -> str:
        return self.http.url + "/v1"

    async def handle(self, req: RawRequest, out: Responder) -> None:
        if req.method == "GET":
            if req.path == "/v1/models":
                await out.send_json(200, {"object": "list", "data": [
                    {"id": "hostile", "object": "model", "created": 0, "owned_by": "test"}]})
            else:
                await out.send_json(200 if req.path == "/health" else 404, {"status": "ok"})
            return
        self.requests += 1
        await send_reply(self.reply, out)


async def send_reply(reply: Reply, out: Responder) -> None:
    """Write ``reply`` on ``out`` exactly as scripted."""
    headers = {} if reply.content_type is None else {"content-type": reply.content_type}
    if reply.chunked:
        head = out._head(reply.status, {**headers, "transfer-encoding": "chunked"})
        out.writer.write(head)
        out.sent_headers = True
        for piece in reply.pieces:
            if piece:  # an empty chunk would end the body
                await out.send_chunk(piece)
        if reply.abort:
            out.abort()
        else:
            await out.end_stream()
        return
    body = b"".join(reply.pieces)
    promised = len(body) + (100 if reply.abort else 0)
    out.writer.write(out._head(reply.status, {**headers, "content-length": str(promised)}) + body)
    out.sent_headers = True
    if reply.abort:
        out.abort()
    else:
        await out.writer.drain()
