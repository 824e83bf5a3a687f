"""What a request may use, estimated before it is sent: reserved first, settled to the actual
usage once the answer is in."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from warden.observe.pricing import TokenPrice
from warden.providers.base import ApiKind

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and BPE tokenizers


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _texts(value: Any) -> Iterable[str]:
    """The strings inside a prompt: message contents, content parts, lists of prompts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for name in ("content", "text"):
            if name in value:
                yield from _texts(value[name])


def prompt_tokens(kind: ApiKind, body: dict[str, Any]) -> int:
    """About how many tokens the prompt holds (at least 1)."""
    field = {"chat": "messages", "completion": "prompt", "embedding": "input"}[kind]
    return max(1, sum(text_tokens(t) for t in _texts(body.get(field))))


def output_tokens(kind: ApiKind, body: dict[str, Any], default: int) -> int:
    """The most completion tokens the answer may hold: max_tokens (or ``default``) per choice."""
    if kind == "embedding":
        return 0
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    n = body.get("n")
    per_choice = limit if isinstance(limit, int) and limit > 0 else default
    return per_choice * (n if isinstance(n, int) and n > 0 else 1)


def max_cost(prices: Iterable[TokenPrice | None], input_tokens: int, output_tokens: int) -> float:
    """The cost of these tokens at the dearest of ``prices`` (an unknown price counts 0)."""
    return max((p.cost(input_tokens, output_tokens) for p in prices if p is not None),
               default=0.0)
