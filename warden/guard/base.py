"""The Scanner contract: text and context in, detections out.

A scanner looks at one text (a prompt or an answer) and says what it found: a type, a score in
[0, 1] and, where the finding is a piece of the text, its character span. It never decides what
happens: policies do (block, redact, pseudonymize or flag, above a threshold). A scanner is built
once per runtime from its options and then called many times, from several threads at once: it
must not keep per-call state.

Scanners register through the ``register_scanners`` hook, exactly as built-in ones do.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Where = Literal["input", "output"]


@dataclass(slots=True, frozen=True)
class Detection:
    """One thing a scanner found. ``start``/``end`` are character offsets into the scanned
    text (end exclusive); both None when the finding is about the text as a whole."""

    type: str
    score: float
    start: int | None = None
    end: int | None = None

    @property
    def has_span(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(slots=True, frozen=True)
class ScanContext:
    """What a scanner may know besides the text."""

    where: Where
    model: str = ""
    key: str | None = None
    system_prompt: str | None = None  # the request's system prompt (leak checks, injection context)
    canary: str | None = None  # the canary token placed in the system prompt, if any
    response_format: Mapping[str, Any] | None = None  # the request's response_format
    extra: Mapping[str, Any] = field(default_factory=dict)


class ScannerOptions(BaseModel):
    """A scanner's options; each scanner subclasses this (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")


class Scanner(abc.ABC):
    """Looks at one text and returns what it found.

    ``name`` is what the config calls it (``scanners: [{name: pii}]``); ``directions`` says
    where it makes sense. ``blocking`` is True for a scanner slow enough (an NER model) that the
    gateway should run it in a worker thread rather than on the event loop. ``whole_text`` is
    True for a scanner whose verdict needs the complete text (JSON validity): on a streamed
    answer it runs once, at the end, instead of on each held-back window. ``windowed`` is False
    for a scanner that must read a long text whole rather than in the bounded, overlapping
    windows the gateway otherwise hands it (``warden.guard.scan``): a count over the whole text.
    Either way a scanner's cost must grow linearly with the length of what it reads, and one
    that reads a text whole must do so in bounded steps (each regular-expression call holds
    the GIL from start to end).

    ``scans_every_field`` is True for a scanner that finds data which must not pass whoever
    wrote it (personal data, credentials, a leaked canary): it
    reads every text the provider or the client will see — system and developer messages,
    names, tool definitions and tool calls, the ``user`` field, a prediction, every content
    part — and values split across messages. A scanner that judges what a conversation asks for
    (injection, toxicity, banned words and topics, length) reads only its messages' texts, since
    the operator's own instructions would often read to it as the very thing it looks for.
    """

    name: ClassVar[str]
    directions: ClassVar[frozenset[Where]] = frozenset({"input", "output"})
    options_model: ClassVar[type[ScannerOptions]] = ScannerOptions
    blocking: ClassVar[bool] = False
    whole_text: ClassVar[bool] = False
    scans_every_field: ClassVar[bool] = False
    windowed: ClassVar[bool] = True

    def __init__(self, options: ScannerOptions) -> None:
        self.options = options

    @classmethod
    def from_options(cls, raw: Mapping[str, Any] | None = None) -> Scanner:
        """Build the scanner from its config options (validated by ``options_model``)."""
        return cls(cls.options_model.model_validate(dict(raw or {})))

    @abc.abstractmethod
    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        """What this scanner finds in ``text``; an empty list when nothing."""
