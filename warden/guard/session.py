"""One request under a guard policy: the prompt checked and rewritten before the call, the answer
checked, redacted and de-pseudonymized after it. Findings go to the request context (and from
there to the record, the metrics and the trace)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from warden.errors import ContentBlocked
from warden.guard.base import ScanContext, Where
from warden.guard.parts import (
    answer_parts,
    replace,
    request_parts,
    system_prompt,
    with_system_prompt,
)
from warden.guard.policy import Policy, Rule
from warden.guard.rewrite import Edit, Pseudonyms, apply
from warden.guard.scan import Hit, Pacer, scan
from warden.guard.scanners.canary import make_canary, plant_canary
from warden.observe.record import Finding
from warden.pipeline.context import RequestContext
from warden.providers.base import Completion

# Findings recorded per scanner, type and text: a hostile text can hold hundreds of thousands
# (a URL every few characters), and each recorded one costs a record row, a metric increment and a
# trace event on the event loop. The action still applies to every one of them.
MAX_NOTED = 100
MANY_HITS = 1_000  # judged in a worker thread above this: the loop keeps serving meanwhile
INPUT_BLOCKED = ("The request was blocked by the gateway's input policy. An administrator can "
                 "see why in the record of request {rid}.")
OUTPUT_BLOCKED = ("The answer was withheld by the gateway's output policy. An administrator can "
                  "see why in the record of request {rid}.")


def effective_action(hit: Hit) -> str:
    """A finding that is not a piece of the text cannot be cut out of it: redacting or
    pseudonymizing it means refusing the text."""
    if hit.action in ("redact", "pseudonymize") and not hit.spanned:
        return "block"
    return hit.action


class GuardSession:
    """The guard state of one request: its policy, pseudonyms and canary."""

    def __init__(self, policy: Policy, ctx: RequestContext, block_status: int) -> None:
        self.policy = policy
        self.ctx = ctx
        self.block_status = block_status
        self.pseudonyms = Pseudonyms()
        self.canary: str | None = None
        self.system_prompt: str | None = None
        self.pacer = Pacer()

    def scan_context(self, where: Where) -> ScanContext:
        body = self.ctx.body
        key = self.ctx.key
        fmt = body.get("response_format")
        return ScanContext(where=where, model=self.ctx.model,
                           key=key.name if key is not None else None,
                           system_prompt=self.system_prompt, canary=self.canary,
                           response_format=fmt if isinstance(fmt, dict) else None)

    def note(self, hit: Hit, action: str, where: Where, part: int,
             offset: int = 0) -> Finding:
        d = hit.detection
        finding = Finding(
            scanner=hit.rule.name, type=d.type, action=action, score=round(d.score, 4),
            where=where, start=d.start + offset if d.start is not None else None,
            end=d.end + offset if d.end is not None else None, part=part,
        )
        self.ctx.findings.append(finding)
        return finding

    def blocked(self, where: Where) -> ContentBlocked:
        text = INPUT_BLOCKED if where == "input" else OUTPUT_BLOCKED
        return ContentBlocked(text.format(rid=self.ctx.request_id), status=self.block_status)

    async def check_input(self) -> None:
        """Scan the prompt; raise ContentBlocked, or rewrite ``ctx.body`` for the upstream."""
        ctx = self.ctx
        self.system_prompt = system_prompt(ctx.body)
        sctx = self.scan_context("input")
        block = False
        changes: dict[tuple[str | int, ...], str] = {}
        for n, part in enumerate(request_parts(ctx.kind, ctx.body)):
            edits, stop = await self._judged(await scan(self.policy.input, part.text, sctx, self.pacer),
                                      "input", n)
            block = block or stop
            if edits:
                changes[part.path] = apply(part.text, edits, self.pseudonyms)
        if block:
            raise self.blocked("input")
        body = ctx.body
        if changes:
            body = replace(body, changes)
        if self.policy.canary:
            body = self._plant_canary(body)
        if body is not ctx.body:
            ctx.original_body = ctx.original_body or ctx.body
            ctx.body = body

    async def _judged(self, hits: list[Hit], where: Where, part: int) -> tuple[list[Edit], bool]:
        """``_judge``, in a worker thread when the hits are many (a long hostile text)."""
        if len(hits) > MANY_HITS:
            return await asyncio.to_thread(self._judge, hits, where, part)
        return self._judge(hits, where, part)

    def _judge(self, hits: list[Hit], where: Where, part: int,
               offset: int = 0) -> tuple[list[Edit], bool]:
        edits: list[Edit] = []
        block = False
        noted: Counter[tuple[str, str]] = Counter()
        for hit in hits:
            action = effective_action(hit)
            kind = (hit.rule.name, hit.detection.type)
            noted[kind] += 1
            if noted[kind] <= MAX_NOTED:
                self.note(hit, action, where, part, offset)
            d = hit.detection
            if action == "block":
                block = True
            elif action in ("redact", "pseudonymize") and d.start is not None \
                    and d.end is not None:
                edits.append(Edit(d.start, d.end, d.type, action == "pseudonymize"))
        return edits, block

    def _plant_canary(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.system_prompt is None:
            return body  # no system prompt to protect
        canary = make_canary()
        changed = with_system_prompt(body, plant_canary(self.system_prompt, canary))
        if changed is None:
            return body  # a multi-part system message: left as it is
        self.canary = canary
        return changed

    async def check_answer(self, result: Completion) -> Completion:
        """Scan a whole answer; raise ContentBlocked, or return it redacted and restored."""
        sctx = self.scan_context("output")
        changes: dict[tuple[str | int, ...], str] = {}
        block = False
        for n, part in enumerate(answer_parts(result.body)):
            edits, stop = await self._judged(await scan(self.policy.output, part.text, sctx, self.pacer),
                                      "output", n)
            block = block or stop
            text = apply(part.text, edits, self.pseudonyms) if edits else part.text
            text = self.pseudonyms.restore(text)
            if text != part.text:
                changes[part.path] = text
        if block:
            raise self.blocked("output")
        if not changes:
            return result
        return Completion(body=replace(result.body, changes), usage=result.usage)

    @property
    def output_rules(self) -> tuple[Rule, ...]:
        return self.policy.output
