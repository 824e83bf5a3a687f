"""The Provider contract: how Warden talks to one upstream deployment.

A provider receives a ``ProviderCall`` whose ``body`` is an OpenAI wire-format request (with
``model`` already set to the upstream model name) and answers in OpenAI wire format, whatever the
upstream speaks. Errors are raised as ``WardenError`` subclasses so that the router can tell a
retryable failure (connect error, timeout, 429, 5xx) from a final one (400).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from prometheus_client.core import Metric
from pydantic import BaseModel, ConfigDict

from warden.config import Deployment

if TYPE_CHECKING:
    from warden.lifecycle.integrity import IntegrityOutcome

ApiKind = Literal["chat", "completion", "embedding"]


@dataclass(slots=True)
class Usage:
    """Token counts of one answer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return out

    @classmethod
    def from_wire(cls, data: Any) -> Usage | None:
        """The counts of a wire ``usage`` object, a count that is not one read as 0 (the
        gateway checks an upstream's usage apart: ``warden.providers.validate``)."""
        if not isinstance(data, dict):
            return None
        details = data.get("prompt_tokens_details")
        return cls(
            prompt_tokens=_count(data.get("prompt_tokens")),
            completion_tokens=_count(data.get("completion_tokens")),
            cached_tokens=_count(details.get("cached_tokens")) if isinstance(details, dict) else 0,
        )


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


@dataclass(slots=True, frozen=True)
class Timeouts:
    """Resolved time limits of one attempt, in seconds."""

    connect: float
    first_byte: float
    total: float


@dataclass(slots=True)
class ProviderCall:
    """One request to one deployment."""

    kind: ApiKind
    body: dict[str, Any]
    stream: bool
    request_id: str
    timeouts: Timeouts
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer: the OpenAI wire body and its token usage."""

    body: dict[str, Any]
    usage: Usage | None


class ProviderParams(BaseModel):
    """Base for a provider's own ``params:`` block; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(abc.ABC):
    """One upstream deployment.

    ``complete`` returns a whole answer. ``stream`` returns an async iterator of OpenAI chunk
    objects (``chat.completion.chunk`` / ``text_completion``); it must raise retryable errors
    before yielding its first chunk where it can, and ends with a chunk carrying ``usage`` when
    the upstream reports it. Implementations create network resources lazily, inside the event
    loop that uses them, and release them in ``aclose``.

    The gateway checks the shape of every answer and chunk a provider returns, and its usage
    (``warden.providers.validate``); a provider need only refuse what it cannot read itself,
    with ``UpstreamBadResponse``.

    A provider that loads a model file checks it first (``warden.lifecycle.integrity``) and
    keeps the outcome in ``integrity``, failed or not; the runtime records it after ``start``.
    """

    name: ClassVar[str]
    Params: ClassVar[type[ProviderParams]] = ProviderParams
    integrity: IntegrityOutcome | None = None

    def __init__(self, deployment: Deployment, params: ProviderParams) -> None:
        self.deployment = deployment
        self.params = params

    @abc.abstractmethod
    async def complete(self, call: ProviderCall) -> Completion:
        """Answer a non-streamed request."""

    @abc.abstractmethod
    def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        """Answer a streamed request chunk by chunk."""

    async def start(self) -> None:
        """Get ready before traffic (load a model, say); raise a WardenError if it cannot."""
        return None

    async def collect(self) -> Iterator[Metric]:
        """Serving metrics of this deployment, read at scrape time (none by default)."""
        return iter(())

    async def check(self, timeout_s: float) -> None:
        """Raise a WardenError if the upstream is unhealthy (used by active health checks)."""
        return None

    async def aclose(self) -> None:
        """Release connections and other resources."""
        return None
