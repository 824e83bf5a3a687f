"""The Record: the one account of one request that every reader (store, metrics, dashboard,
monitors, compliance) works from. Prompt and completion text live apart, in a Payload, so that
redaction, encryption, retention and erasure touch one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "error", "blocked"]
CacheOutcome = Literal["hit", "miss", "bypass"]
PayloadPolicy = Literal["full", "redacted", "none"]


@dataclass(slots=True, frozen=True)
class AttemptRecord:
    """One upstream attempt."""

    model: str
    deployment: str
    provider: str
    started_s: float  # since the request started
    latency_s: float
    status: int  # HTTP status of the attempt; 0 when no answer came (connect error)
    error_type: str | None = None
    error: str | None = None


@dataclass(slots=True, frozen=True)
class Finding:
    """What a guard scanner found (filled by the guardrails)."""

    scanner: str
    type: str
    action: str
    score: float
    where: Literal["input", "output"]
    start: int | None = None  # character span in the scanned text (None: the text as a whole)
    end: int | None = None
    part: int | None = None  # which text: the n-th scanned message/prompt, or answer choice


@dataclass(slots=True)
class Record:
    """One request, as it ended.

    ``request_id`` is the record's own key, made by the gateway: unique to this request, even
    when a client sends the same ``x-request-id`` twice. The client's id is kept apart, as a
    label, in ``client_request_id``. ``truncated`` names the fields that were cut or cleaned to
    fit the store (``warden.observe.bounds``)."""

    request_id: str
    trace_id: str
    started_at: float  # unix seconds
    ended_at: float
    api: Literal["chat", "completion", "embedding"]
    model: str  # the public name the client asked for
    status: Status
    http_status: int
    latency_s: float
    ttft_s: float | None = None
    stream: bool = False
    deployment: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    model_version: str | None = None
    key_id: str | None = None
    team: str | None = None
    end_user: str | None = None
    session_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    output_tokens_per_s: float | None = None
    cost_usd: float | None = None  # None: the price is unknown, never a silent zero
    cache: CacheOutcome = "bypass"
    region: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    client_request_id: str | None = None  # the client's x-request-id, when it sent a usable one
    truncated: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Payload:
    """The text of one request, kept per the payload policy."""

    request_id: str
    policy: PayloadPolicy
    prompt: str | None  # the messages (or prompt) as JSON text
    completion: str | None
