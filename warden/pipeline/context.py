"""What one request carries through the pipeline."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warden.access.roles import Principal
from warden.errors import WardenError
from warden.observe.pricing import TokenPrice
from warden.observe.record import Finding
from warden.providers.base import ApiKind, Completion, Usage


@dataclass(slots=True)
class Attempt:
    """One try against one deployment."""

    model: str
    deployment: str
    provider: str
    started_s: float
    span_id: str = ""  # the span id sent upstream in this attempt's traceparent
    latency_s: float = 0.0
    status: int = 0
    error: str | None = None
    error_type: str | None = None


@dataclass(slots=True)
class StreamResult:
    """An answer being streamed: its first chunk is already in hand.

    ``closers`` release what the stream holds (the upstream connection, the deployment's
    in-flight slot); ``aclose`` runs them once, however the stream ended — even if it was
    never read. A stage that wraps ``rest`` adds its own closer.
    """

    first: dict[str, Any]
    rest: AsyncIterator[dict[str, Any]]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        while self.closers:
            await self.closers.pop()()


@dataclass(slots=True)
class RequestContext:
    """One request: what came in, who sent it, where it went and what came back."""

    request_id: str  # the gateway's own, unique: the key of the request's record
    kind: ApiKind
    traceparent: str
    client_request_id: str | None = None  # the client's x-request-id: a label, maybe reused
    parent_span_id: str | None = None  # the client's span, when it sent a traceparent
    raw: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    model: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)
    key: Principal | None = None  # None: /v1 is open (no client keys exist)
    include_usage: bool = False
    deployment: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    price: TokenPrice | None = None
    output: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    result: Completion | StreamResult | None = None
    usage: Usage | None = None
    ttft_s: float | None = None
    error: WardenError | None = None
    # The body as the record keeps it, where that is not ``body``: a guard's rewrite of the
    # prompt without the canary it planted.
    stored_body: dict[str, Any] | None = None
    # The answer's text as the record keeps it, where a guard gave the client back values it
    # had replaced with placeholders: with the placeholders, as the provider wrote it.
    stored_answer: list[str] | None = None
    findings: list[Finding] = field(default_factory=list)
    stages: list[tuple[str, float, float]] = field(default_factory=list)
    """(stage name, start, end) in perf_counter seconds, for the trace's child spans."""

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
