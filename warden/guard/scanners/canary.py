"""``system_prompt_leak``: answers that give away the system prompt (OWASP LLM07).

Two signals:

- ``canary_leak`` (score 1.0): the canary token planted in the system prompt
  (:func:`make_canary`, :func:`plant_canary`) appears in the answer, in any case and even with
  spaces, dashes or invisible characters put between its characters.
- ``system_prompt_overlap``: a run of at least ``min_words`` consecutive words of the system
  prompt appears verbatim in the answer (words compared folded, punctuation ignored). Its score
  is 0.5 at ``min_words`` and grows to 1.0 at twice that, or when the run holds half of the
  system prompt's words.
"""

from __future__ import annotations

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
    """Where the canary occurs, ignoring case and separators put between its characters."""
    folded = fold(text)
    if canary.lower() in folded.text:
        return [Detection("canary_leak", 1.0, *folded.span(m.start(), m.end()))
                for m in re.finditer(re.escape(canary.lower()), folded.text)]
    target = _SEPARATORS.sub("", canary.lower())
    if not target:
        return []
    pattern = re.compile(r"[\s\-_.·]*".join(map(re.escape, target)))
    return [Detection("canary_leak", 1.0, *folded.span(*m.span())) for m in pattern.finditer(folded.text)]


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(SystemPromptLeakScanner)
