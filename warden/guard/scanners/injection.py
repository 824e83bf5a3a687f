"""``injection``: prompt injection and jailbreak attempts in a prompt (OWASP LLM01).

Three layers read the same normalised text (NFKC, case-folded, invisible characters removed;
leetspeak, look-alike letters, spaced-out letters revealed; base64, hex, binary and Morse runs,
named ciphers and split pieces spelled out):

1. heuristics: patterns for instruction override, role-play jailbreaks, system-prompt
   extraction and delimiter or hidden-instruction injection (``warden.guard.injection.heuristics``);
2. similarity: the share of the prompt's word trigrams found in one known attack of a shipped
   bank of hashed trigrams;
3. a classifier: logistic regression over hashed word unigrams and bigrams.

With the request's system prompt (``ScanContext.system_prompt``) the scanner also compares the two:
whether the prompt names what the system prompt rules out, asks to do otherwise, switches
language or sort order (``warden.guard.injection.context``). That is how it finds attacks that are
attacks only against one system prompt ("into Spanish instead" to a bot that translates into
French).

A logistic combiner, fitted on data with the rest, turns the layers' signals into one
probability. A prompt whose probability falls in an uncertain band is read once more, for what
it means: all-MiniLM-L6-v2 embeds it and a second, stacked combiner weighs that reading with the
first (``warden.guard.injection.semantic``). Without the embedding model (the ``local`` extra) the
first stage decides alone, and the log says so once. The scanner reports it as one detection
about the whole text: ``jailbreak`` when the role-play family dominates or the closest known
attack is a jailbreak, else ``prompt_injection`` (with ``spans: true``, the span of the strongest
pattern match where the normalised text keeps the original's offsets). The model, its data and
its measured accuracy: docs/guardrails-injection.md; scripts/train_injection.py retrains it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions, Where
from warden.guard.injection import context, semantic
from warden.guard.injection import model as injection_model
from warden.guard.injection.analysis import Analysis, analyse, score
from warden.guard.injection.semantic import Encoder
from warden.hookspecs import hookimpl


class InjectionOptions(ScannerOptions):
    report_above: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Scores below this are not reported at all (a policy threshold still applies "
        "to the rest).",
    )
    max_chars: int = Field(
        20_000,
        ge=100,
        description="The classifier and the similarity layer read this many leading characters of "
        "what the scanner is handed; the patterns read all of it. The gateway hands a long prompt "
        "over in windows shorter than this (docs/guardrails.md), so every part of it is read.",
    )
    decode_blobs: bool = Field(
        True,
        description="Decode base64, hex, binary and Morse runs, ciphers the prompt names and pieces it "
        "asks to combine, and scan what they say.",
    )
    semantic: bool = Field(
        False,
        description="Read the prompts the first stage is unsure of with the sentence-embedding model "
        "(the local extra), where it is installed: a few fewer false positives on trigger-word prompts "
        "at the same recall, about 20 ms for each prompt it reads (docs/guardrails-injection.md).",
    )
    spans: bool = Field(
        False,
        description="Give a detection the span of its strongest pattern match. Then a redact action "
        "cuts that phrase out instead of blocking: the rest of the attack reaches the model.",
    )


# The rules read from the last system prompts seen, kept per scanner (a memo, the same for every
# call): a deployment sends the same few system prompts again and again, and reading a long one
# costs more than scanning the prompt.
RULES_CACHE = 64

# A span is reported only for a pattern that names the attack itself ("ignore all previous
# instructions"), not for a weak cue ("ChatGPT") that a redact action would cut out for nothing.
SPAN_WEIGHT = 0.6


@functools.cache
def _load(path: Path) -> injection_model.Model:
    # One copy per process: every runtime and every policy shares it (it is read-only).
    return injection_model.load(path)


@functools.cache
def _encoder() -> Encoder | None:
    # One embedding model per process, loaded the first time a scanner wants it; None (said once
    # in the log) when it is not installed.
    return semantic.load_encoder(threads=1)


class InjectionScanner(Scanner):
    """Prompt injection and jailbreaks; one detection scored by the combined layers.

    ``encoder`` reads the prompts of the uncertain band (``semantic.Semantic``); by default the
    process's all-MiniLM-L6-v2 when ``semantic`` is on, the artifact has a second stage and the
    model is installed, else none."""

    name = "injection"
    directions: ClassVar[frozenset[Where]] = frozenset({"input"})
    options_model = InjectionOptions

    def __init__(self, options: ScannerOptions, *, model: injection_model.Model | None = None,
                 encoder: Encoder | None = None) -> None:  # fmt: skip
        super().__init__(options)
        assert isinstance(options, InjectionOptions)
        self.opts = options
        self.model = model if model is not None else _load(injection_model.ARTIFACT)
        self.second = self.model.semantic if options.semantic else None
        if self.second is not None and encoder is None:
            encoder = _encoder()
        self.encoder = encoder if self.second is not None else None
        self._rules = functools.lru_cache(maxsize=RULES_CACHE)(context.read)

    @classmethod
    def from_options(cls, raw: Mapping[str, Any] | None = None) -> Scanner:
        options = InjectionOptions.model_validate(dict(raw or {}))
        model = _load(injection_model.ARTIFACT)
        encoder = _encoder() if options.semantic and model.semantic is not None else None
        # The embedding model takes milliseconds on the prompts it reads: with it, the gateway
        # runs the scanner in a worker thread.
        built = SemanticInjectionScanner if encoder is not None else InjectionScanner
        return built(options, model=model, encoder=encoder)

    @property
    def threshold(self) -> float:
        """The threshold the shipped model was measured at (docs/guardrails-injection.md)."""
        return self.model.threshold

    def score(self, text: str, system: str | None = None) -> tuple[float, str]:
        """(probability that ``text`` is an attack, sent under the ``system`` prompt if given,
        detection type)."""
        return self._score(self._analyse(text, system))

    def _score(self, a: Analysis) -> tuple[float, str]:
        p, kind = score(a, self.model)
        if self.second is not None and self.encoder is not None:
            p = self.second.rescore(p, a.norm.text, a.context, self.encoder)
        return p, kind

    def _analyse(self, text: str, system: str | None) -> Analysis:
        return analyse(text, max_chars=self.opts.max_chars, decode_blobs=self.opts.decode_blobs,
                       rules=self._rules(system) if system else None)  # fmt: skip

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        if not text.strip():
            return []
        a = self._analyse(text, ctx.system_prompt)
        p, kind = self._score(a)
        if p < self.opts.report_above:
            return []
        hit = a.first_hit() if self.opts.spans and a.norm.aligned else None
        if hit is None or hit.weight < SPAN_WEIGHT:
            return [Detection(kind, round(p, 4))]
        return [Detection(kind, round(p, 4), hit.start, hit.end)]


class SemanticInjectionScanner(InjectionScanner):
    """The ``injection`` scanner with its second stage, the embedding model, loaded."""

    blocking = True


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(InjectionScanner)
