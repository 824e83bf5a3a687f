"""Candidate spans, and turning the recognizers' overlapping candidates into one answer.

Rules: a span inside another one goes (the outer one already covers it: an e-mail address
holds its domain). Two spans that cross become one, their union, which takes the type and
score of the higher-scored one (on a tie, the one that is not a phone number, then the
longer); a street address keeps its own type over the place names and
organisations it crosses or covers exactly, since it contains them ("... 25 Apt. 864\\nArtilleros\\n, CO").
Redaction wants the union either way: every character some recognizer flagged.
What is left does not overlap, sorted by start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from warden.guard.base import Detection

ADDRESS = "STREET_ADDRESS"
_PARTS_OF_ADDRESSES = frozenset({"LOCATION", "ORGANIZATION", "PERSON", "NRP"})


@dataclass(frozen=True, slots=True)
class Span:
    """A candidate: an entity type, a score in [0, 1] and ``text[start:end]``."""

    entity: str
    score: float
    start: int
    end: int

    def detection(self) -> Detection:
        return Detection(self.entity, round(min(self.score, 1.0), 2), self.start, self.end)


def resolve(candidates: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans from overlapping candidates (see the module docstring)."""
    out: list[Span] = []
    for s in sorted((s for s in candidates if s.end > s.start), key=lambda s: (s.start, -s.end)):
        if not out or s.start >= out[-1].end:
            out.append(s)
        elif s.end > out[-1].end:  # crosses the last one kept: take the union
            top = _better(out[-1], s)
            out[-1] = Span(top.entity, top.score, out[-1].start, s.end)
        elif s.start == out[-1].start and s.end == out[-1].end:
            out[-1] = _better(out[-1], s)  # the same characters: the better claim
        # else: inside the last one kept
    return out


def _better(a: Span, b: Span) -> Span:
    if a.entity == ADDRESS and b.entity in _PARTS_OF_ADDRESSES:
        return a
    if b.entity == ADDRESS and a.entity in _PARTS_OF_ADDRESSES:
        return b
    # Digits in groups are most often a phone number; where an identifier with a check digit
    # claims the same characters with the same score, the identifier wins.
    return max(a, b, key=lambda s: (s.score, s.entity != "PHONE_NUMBER", s.end - s.start))


def word_set(words: str) -> frozenset[str]:
    """The words of a whitespace-separated list (how the recognizers write their word lists)."""
    return frozenset(words.split())
