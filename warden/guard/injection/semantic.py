"""The second stage: a sentence-embedding reading of the prompts the first stage is unsure of.

The first stage (patterns, the n-gram classifier, the bank of known attacks, the context signals,
weighed by ``model.Combiner``) reads words. It is sure of most prompts, and wrong mostly on benign
ones that borrow an attack's words ("Ignore the distractions around you and focus on your
breathing", "Imagine you are an AI with extraordinary capabilities ..."). A prompt whose first
score falls in the uncertain ``band`` is read once more: all-MiniLM-L6-v2 embeds it
(``warden.embeddings.minilm``), a logistic regression over the 384-dimensional vector scores what
it means, and a second logistic combiner (``stack``) weighs that score with the first one. Prompts
outside the band keep their first score, so the common case never runs the model.

The weights are fitted by scripts/train_injection.py and shipped in the injection artifact
(``model.save``). The embedding model itself is the ``local`` extra's: without it the scanner
scores with the first stage alone (``load_encoder`` returns None and logs why; the scanner calls
it once per process).
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("warden.guard.injection")

# The embedding model reads 256 tokens; tokenising far past them would only cost time.
MAX_CHARS = 2_000
# What the stacking combiner weighs, in order: the first stage's logit (clipped), the embedding
# classifier's logit, whether the prompt came with a system prompt, and whether one of the first
# stage's context signals fired against it (a ruled-out word, a request to deviate, another
# language or order: what the prompt's meaning alone cannot carry, an attack only against that
# system prompt). An artifact without a coefficient weighs that input 0.
STACK = ("first", "semantic", "system", "context")
# The context signals that say the prompt goes against its system prompt (not "context.restricts",
# which says only that the system prompt sets limits).
AGAINST = ("context.forbidden", "context.deviation", "context.contrast", "context.foreign")
LOGIT_CLIP = 8.0


class Encoder(Protocol):
    """A sentence encoder: one text in, one unit vector out (``MiniLMEncoder`` is one)."""

    def vector(self, text: str) -> list[float]:
        """The embedding of ``text``; blocking."""
        ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (``warden.embeddings.minilm.MiniLM``) as an ``Encoder``."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def vector(self, text: str) -> list[float]:
        return [float(x) for x in self._model.embed([text[:MAX_CHARS]])[0]]


def load_encoder(threads: int = 1) -> Encoder | None:
    """all-MiniLM-L6-v2 on ``threads`` onnxruntime threads, or None (and a warning saying why and
    what to install) when it or onnxruntime is not installed."""
    try:
        minilm = importlib.import_module("warden.embeddings.minilm")
    except ImportError as exc:  # numpy missing: the base install
        log.warning("injection: first stage only, the embedding model cannot be imported (%s); "
                    "install the local extra for the second stage", exc)  # fmt: skip
        return None
    try:
        return MiniLMEncoder(minilm.MiniLM(threads=threads))
    except minilm.ModelUnavailable as exc:
        log.warning("injection: first stage only, without the embedding model: %s", exc)
        return None


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(p / (1 - p))))


@dataclass(slots=True, frozen=True)
class Semantic:
    """The second stage's weights: the embedding classifier, the band of first-stage scores it
    reads, and the stacking combiner (coefficients named by ``STACK``)."""

    weights: tuple[float, ...]
    bias: float
    low: float
    high: float
    stack: Mapping[str, float]
    intercept: float

    def uncertain(self, first: float) -> bool:
        """True when a first-stage score ``first`` is in the band the second stage reads."""
        return self.low <= first < self.high

    def logit(self, vector: Sequence[float]) -> float:
        """The embedding classifier's logit for one vector."""
        return self.bias + math.fsum(w * x for w, x in zip(self.weights, vector, strict=True))

    def features(self, first: float, semantic: float, context: Mapping[str, float]) -> dict[str, float]:
        """The stacking combiner's inputs (``STACK``); ``context`` holds the first stage's context
        signals, empty without a system prompt."""
        return {"first": _logit(first), "semantic": max(-LOGIT_CLIP, min(LOGIT_CLIP, semantic)),
                "system": float(bool(context)), "context": against(context)}  # fmt: skip

    def probability(self, first: float, semantic: float, context: Mapping[str, float]) -> float:
        """The combined score of a prompt in the band."""
        z = self.intercept + sum(self.stack.get(k, 0.0) * v
                                 for k, v in self.features(first, semantic, context).items())  # fmt: skip
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0

    def rescore(self, first: float, text: str, context: Mapping[str, float], encoder: Encoder) -> float:
        """The final score of a prompt that scored ``first`` (with the first stage's ``context``
        signals): unchanged outside the band, else the stacked score with its embedding read by
        ``encoder``."""
        if not self.uncertain(first):
            return first
        return self.probability(first, self.logit(encoder.vector(text)), context)


def against(context: Mapping[str, float]) -> float:
    """The strongest of the context signals that say a prompt goes against its system prompt
    (``AGAINST``); 0 without one."""
    return max((context.get(k, 0.0) for k in AGAINST), default=0.0)
