"""Running a policy's rules over one text: findings above threshold, slow scanners off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from warden.guard.base import Detection, ScanContext
from warden.guard.policy import Rule


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


def scan_now(rules: Sequence[Rule], text: str, ctx: ScanContext) -> list[Hit]:
    """Every rule over ``text``, on this thread."""
    hits: list[Hit] = []
    for rule in rules:
        for d in rule.scanner.scan(text, ctx):
            if d.score >= rule.threshold:
                hits.append(Hit(rule, d))
    return hits


async def scan(rules: Sequence[Rule], text: str, ctx: ScanContext) -> list[Hit]:
    """Every rule over ``text``; scanners marked ``blocking`` (NER models) run in a worker
    thread so the event loop keeps serving other requests meanwhile."""
    if not text:
        return []
    quick = [r for r in rules if not r.scanner.blocking]
    slow = [r for r in rules if r.scanner.blocking]
    hits = scan_now(quick, text, ctx)
    if slow:
        hits += await asyncio.to_thread(scan_now, slow, text, ctx)
    return hits
