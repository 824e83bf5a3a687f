"""One request under a guard policy: the prompt checked and rewritten before the call, the answer
checked, redacted and de-pseudonymized after it. Findings go to the request context (and from
there to the record, the metrics and the trace)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

from warden.errors import ContentBlocked
from warden.guard.base import ScanContext, Where
from warden.guard.joined import Joined, Piece, batch, crosses, seams
from warden.guard.parts import (
    Part,
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
from warden.observe.build import completion_text
from warden.observe.record import Finding
from warden.pipeline.context import RequestContext
from warden.providers.base import Completion

INPUT_BLOCKED = ("The request was blocked by the gateway's input policy. An administrator can "
                 "see why in the record of request {rid}.")
OUTPUT_BLOCKED = ("The answer was withheld by the gateway's output policy. An administrator can "
                  "see why in the record of request {rid}.")
SEAM_WINDOW = 64  # characters of each message's ends read again where messages meet

# Findings recorded per scanner, type and direction: a hostile text can hold hundreds of thousands
# (a URL every few characters), and each recorded one costs a record row, a metric increment and a
# trace event on the event loop. The action still applies to every one of them.
MAX_NOTED = 100
MANY_HITS = 1_000  # judged in a worker thread above this: the loop keeps serving meanwhile


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
        self._noted: Counter[tuple[str, str, str]] = Counter()

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
        self._keep(finding)
        return finding

    def _keep(self, finding: Finding) -> None:
        """Add a finding to the record, up to MAX_NOTED of one scanner, type and direction."""
        kind = (finding.scanner, finding.type, finding.where)
        self._noted[kind] += 1
        if self._noted[kind] <= MAX_NOTED:
            self.ctx.findings.append(finding)

    def blocked(self, where: Where) -> ContentBlocked:
        text = INPUT_BLOCKED if where == "input" else OUTPUT_BLOCKED
        return ContentBlocked(text.format(rid=self.ctx.request_id), status=self.block_status)

    async def check_input(self) -> None:
        """Scan the prompt; raise ContentBlocked, or rewrite ``ctx.body`` for the upstream."""
        ctx = self.ctx
        self.system_prompt = system_prompt(ctx.body)
        parts = request_parts(ctx.kind, ctx.body)
        edits, block = await self._check(parts, self.policy.input, "input", seams_too=True)
        if block:
            raise self.blocked("input")
        changes = {parts[n].path: apply(parts[n].text, edits[n], self.pseudonyms)
                   for n in sorted(edits) if edits[n]}
        rewritten = replace(ctx.body, changes) if changes else ctx.body
        # What the model is told (and may leak) is the rewritten system prompt.
        self.system_prompt = system_prompt(rewritten)
        body = self._plant_canary(rewritten) if self.policy.canary else rewritten
        if body is not rewritten:
            ctx.stored_body = rewritten  # the record keeps the prompt without the canary
        ctx.body = body

    async def _check(self, parts: list[Part], rules: tuple[Rule, ...], where: Where,
                     seams_too: bool = False) -> tuple[dict[int, list[Edit]], bool]:
        """The edits to make to each part, and whether to block. Every rule reads the
        conversation's parts one by one; the scanners of every field read all parts in one
        go, and (``seams_too``) the seams between consecutive messages."""
        sctx = self.scan_context(where)
        edits: dict[int, list[Edit]] = {}
        block = False
        judging = tuple(r for r in rules if not r.scanner.scans_every_field)
        every = tuple(r for r in rules if r.scanner.scans_every_field)
        for n, part in enumerate(parts):
            if judging and part.conversation:
                hits = await scan(judging, part.text, sctx, self.pacer)
                block |= await self._off_loop_if_many(
                    len(hits), self._judge, hits, where, n, edits.setdefault(n, []))
        if not every or not parts:
            return edits, block
        whole = batch([(n, p.text) for n, p in enumerate(parts)])
        known: dict[int, list[tuple[int, int]]] = {}
        hits = await scan(every, whole.text, sctx, self.pacer)
        block |= await self._off_loop_if_many(len(hits), self._take_all, hits, where, whole,
                                              known, edits)
        if seams_too:
            block |= await self._seams(parts, every, sctx, known, edits)
        return edits, block

    async def _seams(self, parts: list[Part], rules: tuple[Rule, ...], sctx: ScanContext,
                     known: dict[int, list[tuple[int, int]]],
                     edits: dict[int, list[Edit]]) -> bool:
        """Values split across messages: found where consecutive messages meet (all messages
        in order, and the user's alone), and not already found whole in the first one."""
        said = [(n, p.text) for n, p in enumerate(parts) if p.role is not None and p.text]
        users = [(n, t) for n, t in said if parts[n].role == "user"]
        order = {n: i for i, (n, _) in enumerate(said)}
        sequences = [said]
        if any(order[b] != order[a] + 1 for (a, _), (b, _) in itertools.pairwise(users)):
            sequences.append(users)
        if len(said) < 2:
            return False
        joined = seams(sequences, SEAM_WINDOW)
        block = False
        taken: set[tuple[object, ...]] = set()
        for hit in await scan(rules, joined.text, sctx, self.pacer):
            d = hit.detection
            if d.start is None or d.end is None:
                continue  # about the text as a whole: read already, whole, in the batch
            located = joined.locate(d.start, d.end)
            if not crosses(located):
                continue
            piece, s, e = located[0]
            if any(a < e and s < b for a, b in known.get(piece.part, ())):
                continue  # something found whole in the first message, run into the next one
            key = (hit.rule.name, d.type, *((p.part, a, b) for p, a, b in located))
            if key in taken:
                continue
            taken.add(key)
            block |= self._take(hit, "input", piece.part, s, e, located, edits)
        return block

    async def _off_loop_if_many(self, n: int, judge: Callable[..., bool], *args: Any) -> bool:
        """``judge(*args)``, in a worker thread when there are many hits (a long hostile text)."""
        if n > MANY_HITS:
            return await asyncio.to_thread(judge, *args)
        return judge(*args)

    def _take_all(self, hits: list[Hit], where: Where, whole: Joined,
                  known: dict[int, list[tuple[int, int]]], edits: dict[int, list[Edit]]) -> bool:
        """Take every hit of the joined scan of all parts; True when one blocks."""
        block = False
        for hit in hits:
            d = hit.detection
            if d.start is None or d.end is None:
                block |= self._take(hit, where, None, None, None, [], edits)
                continue
            located = whole.locate(d.start, d.end)
            for p, s, e in located:
                known.setdefault(p.part, []).append((s, e))
            block |= self._take(hit, where, *_first(located), located, edits)
        return block

    def _take(self, hit: Hit, where: Where, part: int | None, start: int | None,
              end: int | None, located: list[tuple[Piece, int, int]],
              edits: dict[int, list[Edit]]) -> bool:
        """Note a finding of a joined scan (at the part where it starts) and add its edits to
        every part it covers; True when it blocks."""
        action = effective_action(hit)
        d = hit.detection
        self._keep(Finding(scanner=hit.rule.name, type=d.type, action=action,
                           score=round(d.score, 4), where=where, start=start, end=end, part=part))
        if action in ("redact", "pseudonymize"):
            for p, s, e in located:
                edits.setdefault(p.part, []).append(Edit(s, e, d.type, action == "pseudonymize"))
        return action == "block"

    def _judge(self, hits: list[Hit], where: Where, part: int, edits: list[Edit],
               offset: int = 0) -> bool:
        """Note each hit on one text and add its edits; True when one blocks."""
        block = False
        for hit in hits:
            action = effective_action(hit)
            self.note(hit, action, where, part, offset)
            d = hit.detection
            if action == "block":
                block = True
            elif action in ("redact", "pseudonymize") and d.start is not None \
                    and d.end is not None:
                edits.append(Edit(d.start, d.end, d.type, action == "pseudonymize"))
        return block

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
        parts = answer_parts(result.body)
        edits, block = await self._check(parts, self.policy.output, "output")
        if block:
            raise self.blocked("output")
        changes: dict[tuple[str | int, ...], str] = {}
        kept: dict[tuple[str | int, ...], str] = {}  # the same, placeholders left in
        for n, part in enumerate(parts):
            found = edits.get(n)
            text = apply(part.text, found, self.pseudonyms) if found else part.text
            restored = self.pseudonyms.restore(text, part.in_json)
            if restored != part.text:
                changes[part.path] = restored
            if text != part.text:
                kept[part.path] = text
        if changes != kept:
            # The record keeps the placeholders, never the values behind them.
            self.ctx.stored_answer = [completion_text(Completion(
                body=replace(result.body, kept), usage=result.usage))]
        if not changes:
            return result
        return Completion(body=replace(result.body, changes), usage=result.usage)

    @property
    def output_rules(self) -> tuple[Rule, ...]:
        return self.policy.output


def _first(located: list[tuple[Piece, int, int]]) -> tuple[int | None, int | None, int | None]:
    """Where a finding of a joined scan is recorded: the part it starts in, and its span there."""
    if not located:
        return None, None, None
    piece, start, end = located[0]
    return piece.part, start, end
