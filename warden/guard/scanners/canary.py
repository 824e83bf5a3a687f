"""``system_prompt_leak``: answers that give away the system prompt (OWASP LLM07).

Two signals:

- ``canary_leak`` (score 1.0): the canary token planted in the system prompt
  (:func:`make_canary`, :func:`plant_canary`) appears in the answer, in any case and even with
  spaces, dashes, punctuation or invisible characters put between its characters; written
  backwards; as hex (upper or lower case; ``\\x``, ``0x`` or ``%`` before each byte or not);
  in ROT13; or in base64 (standard or URL-safe, at any of the three alignments a longer encoded
  text can put it at, line breaks allowed).
- ``system_prompt_overlap``: a run of at least ``min_words`` consecutive words of the system
  prompt appears verbatim in the answer (words compared folded, punctuation ignored). Its score
  is 0.5 at ``min_words`` and grows to 1.0 at twice that, or when the run holds half of the
  system prompt's words.
"""

from __future__ import annotations

import base64
import codecs
import functools
import re
import secrets
from collections.abc import Callable

from pydantic import Field

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.guard.text import WORD, fold
from warden.hookspecs import hookimpl

CANARY_PREFIX = "wdn-"
_SEPARATORS = re.compile(r"[\s\-_.·]+")


def make_canary() -> str:
    """A fresh canary token: a prefix and 16 random hex digits (``wdn-3f9a0c...``)."""
    return CANARY_PREFIX + secrets.token_hex(8)


def plant_canary(system_prompt: str, canary: str) -> str:
    """The system prompt with the canary placed where a verbatim leak would carry it: a
    comment line before the instructions that a model has no reason to repeat."""
    return f"<!-- {canary} -->\n{system_prompt}"


class SystemPromptLeakOptions(ScannerOptions):
    canary: bool = Field(True, description="Look for the request's canary token.")
    overlap: bool = Field(True, description="Look for runs of system prompt words.")
    min_words: int = Field(
        8, ge=3, description="Shortest run of consecutive system prompt words reported (system "
        "prompts shorter than this are looked for whole).")


class SystemPromptLeakScanner(Scanner):
    """The canary token, and long verbatim runs of the system prompt, in an answer."""

    name = "system_prompt_leak"
    scans_every_field = True
    directions = frozenset({"output"})
    options_model = SystemPromptLeakOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, SystemPromptLeakOptions)
        self.opts = options

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        found: list[Detection] = []
        if self.opts.canary and ctx.canary:
            found += _canary_spans(text, ctx.canary)
        if self.opts.overlap and ctx.system_prompt:
            prompt = ctx.system_prompt.replace(ctx.canary, " ") if ctx.canary else ctx.system_prompt
            found += self._overlaps(text, prompt)
        return found

    def _overlaps(self, text: str, system_prompt: str) -> list[Detection]:
        prompt_words = WORD.findall(fold(system_prompt).text)
        n = min(self.opts.min_words, len(prompt_words))
        if n < 3:
            return []
        shingles = {tuple(prompt_words[i:i + n]) for i in range(len(prompt_words) - n + 1)}
        folded = fold(text)
        matches = list(WORD.finditer(folded.text))
        answer_words = [m.group() for m in matches]
        covered = [False] * len(answer_words)
        for i in range(len(answer_words) - n + 1):
            if tuple(answer_words[i:i + n]) in shingles:
                covered[i:i + n] = [True] * n
        found: list[Detection] = []
        i = 0
        while i < len(covered):
            if not covered[i]:
                i += 1
                continue
            j = i
            while j < len(covered) and covered[j]:
                j += 1
            run = j - i
            score = 1.0 if run * 2 >= len(prompt_words) else min(1.0, 0.5 * run / n)
            start, end = folded.span(matches[i].start(), matches[j - 1].end())
            found.append(Detection("system_prompt_overlap", score, start, end))
            i = j
        return found


def _canary_spans(text: str, canary: str) -> list[Detection]:
    """Where the canary occurs in any of its forms (see the module docstring)."""
    spelled, encoded = _canary_patterns(canary)
    folded = fold(text)
    found = [Detection("canary_leak", 1.0, *folded.span(*m.span()))
             for m in spelled.finditer(folded.text)]
    found += [Detection("canary_leak", 1.0, *m.span()) for m in encoded.finditer(text)]
    return found


_GAP = r"[\s\-_.·,;:|/+'\"`]{0,6}"  # what may be put between two characters of a spelled form
_BYTE_PREFIX = r"(?:\\x|0x|%|u00)?"


@functools.lru_cache(maxsize=64)
def _canary_patterns(canary: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Two patterns, built once per canary: its spelled forms (plain, backwards, hex, ROT13),
    for the folded text, and its base64 forms, for the text as written (base64 is case-bound).
    Each is a fixed chain of characters with bounded gaps: one pass over the text."""
    plain = _SEPARATORS.sub("", canary.lower())
    raw = canary.encode()
    spelled = [_GAP.join(map(re.escape, form))
               for form in (plain, plain[::-1], codecs.encode(plain, "rot13"))]
    spelled.append(_GAP.join(_BYTE_PREFIX + f"{b:02x}" for b in raw))
    encoded = set()
    for align in range(3):
        # The canary's bytes after ``align`` others: the characters that depend on them alone.
        chars = base64.b64encode(bytes(align) + raw + bytes(2)).decode()
        first, last = -(-8 * align // 6), (8 * (align + len(raw))) // 6
        encoded.add(chars[first:last])
    forms = [f for e in sorted(encoded) for f in (e, e.translate(str.maketrans("+/", "-_")))]
    return (re.compile("|".join(spelled)),
            re.compile("|".join(r"\s{0,2}".join(map(re.escape, f)) for f in forms)))


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(SystemPromptLeakScanner)
