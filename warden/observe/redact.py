"""Baseline redaction for stored payloads under the ``redacted`` policy.

It masks what can be recognised without a model: e-mail addresses, phone numbers, card-like and
other long digit runs, IPv4 addresses, and secret-looking tokens (API keys, JWTs). The guardrail
scanners replace this with their findings where they run.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"), "[JWT]"),
    (re.compile(r"\b(?:sk|pk|rk|ghp|gho|xox[abp]|AKIA|AIza)[\w-]{10,}"), "[SECRET]"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "[IP]"),
    (re.compile(r"(?<![\w])\+?\d[\d ().-]{7,}\d(?![\w])"), "[NUMBER]"),
)


def redact(text: str) -> str:
    for pattern, label in _PATTERNS:
        text = pattern.sub(label, text)
    return text
