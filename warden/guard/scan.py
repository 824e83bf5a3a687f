"""Running a policy's rules over one text: findings above threshold, long texts off the loop.

Cost. Every built-in scanner is linear in the length of what it reads, and a long text is read in
bounded windows, so that scanning a text of any length takes time in proportion to it and no
single regular-expression call runs on more than one window: Python's ``re`` holds the GIL for a
whole call, and a call over megabytes would stall every other thread for as long.

Windows. A text longer than ``WINDOW + AFTER`` characters is cut into windows that each own
``WINDOW`` characters and also read ``BEFORE`` characters before and ``AFTER`` after them (the
context a pattern looks back at, and the rest of a match that starts near the end). A window
reports what starts in the characters it owns; a finding about the window as a whole (a score
with no span) is reported once per type, at the highest score any window gave it. Nothing is
skipped: every character is owned by exactly one window. A scanner that needs the whole text at
once (``Scanner.windowed`` False: a token count, a JSON parse) reads it whole and must do so in
bounded steps itself.

Where. A text of up to ``INLINE`` characters is scanned on the event loop (a worker thread would
cost more than the scan); ``Pacer`` hands the loop back between parts once inline scans of one
request have held it for ``Pacer.budget_s``. A longer text, and every text a ``blocking`` scanner
(an NER model) reads, is scanned in a worker thread, so the loop keeps answering other requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from warden.guard.base import Detection, ScanContext
from warden.guard.policy import Rule

WINDOW = 16_384  # characters a window owns (the longest prompt of the evaluation sets is 12k)
BEFORE = 256  # characters of context before them
AFTER = 2_048  # and after them: longer than any finding a built-in scanner reports
INLINE = 4_096  # the longest text scanned on the event loop


@dataclass(slots=True, frozen=True)
class Hit:
    """A detection at or above its rule's threshold."""

    rule: Rule
    detection: Detection

    @property
    def action(self) -> str:
        return self.rule.action

    @property
    def spanned(self) -> bool:
        return self.detection.has_span


class Pacer:
    """The inline scans of one request: after ``budget_s`` of them in a row, the next scan first
    yields to the event loop, so a body of many short parts cannot hold it either."""

    def __init__(self, budget_s: float = 0.005) -> None:
        self.budget_s = budget_s
        self._held = 0.0

    async def pace(self, spent_s: float) -> None:
        self._held += spent_s
        if self._held >= self.budget_s:
            self._held = 0.0
            await asyncio.sleep(0)


def windows(length: int) -> Iterator[tuple[int, int, int, int]]:
    """(read_from, read_to, own_from, own_to) for each window over a text of ``length``."""
    for own in range(0, length, WINDOW):
        own_to = own + WINDOW
        if length - own_to <= AFTER:  # the last window owns the short rest as well
            yield max(0, own - BEFORE), length, own, length
            return
        yield max(0, own - BEFORE), own_to + AFTER, own, own_to


def scan_rule(rule: Rule, text: str, ctx: ScanContext) -> list[Detection]:
    """What ``rule``'s scanner finds in ``text``, read window by window where it is long."""
    scanner = rule.scanner
    if len(text) <= WINDOW + AFTER or not scanner.windowed or scanner.whole_text:
        return scanner.scan(text, ctx)
    spanned: dict[tuple[str, int, int], Detection] = {}
    whole: dict[str, Detection] = {}
    for lo, hi, own, own_to in windows(len(text)):
        for d in scanner.scan(text[lo:hi], ctx):
            if d.start is None or d.end is None:
                if d.type not in whole or d.score > whole[d.type].score:
                    whole[d.type] = d
            elif own <= lo + d.start < own_to:
                key = (d.type, lo + d.start, lo + d.end)
                spanned[key] = Detection(d.type, d.score, *key[1:])
    return [*whole.values(), *spanned.values()]


def scan_now(rules: Sequence[Rule], text: str, ctx: ScanContext) -> list[Hit]:
    """Every rule over ``text``, on this thread."""
    hits: list[Hit] = []
    for rule in rules:
        for d in scan_rule(rule, text, ctx):
            if d.score >= rule.threshold:
                hits.append(Hit(rule, d))
    return hits


async def scan(rules: Sequence[Rule], text: str, ctx: ScanContext,
               pacer: Pacer | None = None) -> list[Hit]:
    """Every rule over ``text``: a short text on the loop (``pacer`` yields it now and then), a
    long one and the ``blocking`` scanners in a worker thread."""
    if not text:
        return []
    if len(text) > INLINE:
        return await asyncio.to_thread(scan_now, rules, text, ctx)
    quick = [r for r in rules if not r.scanner.blocking]
    slow = [r for r in rules if r.scanner.blocking]
    started = time.perf_counter()
    hits = scan_now(quick, text, ctx)
    if pacer is not None:
        await pacer.pace(time.perf_counter() - started)
    if slow:
        hits += await asyncio.to_thread(scan_now, slow, text, ctx)
    return hits
