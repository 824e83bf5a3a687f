"""Guarding a streamed answer: the last few characters of each choice are held back until they
have been scanned, so a redaction or a block happens before the text leaves.

Each choice's content is one channel, and so are the arguments of each of its tool calls
(``delta.tool_calls[i].function.arguments``, read by the scanners of every field: credentials,
personal data, a leaked canary). Per channel, text waits in ``pending``. When at least twice
the hold-back has gathered (or the choice finishes), the pending text is scanned together with
the tail already sent (for matches that cross the boundary); findings that end inside the
held-back part wait for more text, the rest is redacted and released, pseudonyms restored. A
block ends the stream with an error event before the offending text is sent. At the end, the
whole answer is scanned once more for what only the whole text shows (JSON validity, a
refusal): too late to change it, but recorded, and a block still ends the stream with an error
instead of ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from warden.errors import ContentBlocked
from warden.guard.policy import Rule
from warden.guard.rewrite import Edit, apply, open_placeholder_at
from warden.guard.scan import scan
from warden.guard.session import GuardSession, effective_action
from warden.pipeline.context import StreamResult

TAIL = 256  # characters already sent that are scanned again with the next text


@dataclass(slots=True)
class _Channel:
    rules: tuple[Rule, ...]
    in_json: bool = False  # tool call arguments: restored values are escaped for JSON
    pending: str = ""
    tail: str = ""
    sent: int = 0  # characters sent so far (after redaction, before restoring pseudonyms)
    text: list[str] = field(default_factory=list)
    seen: set[tuple[object, ...]] = field(default_factory=set)


def _delta(choice: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The dict holding a choice's text and its key (chat: delta.content; completion: text)."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta, "content"
    if "text" in choice:
        return choice, "text"
    return None


class StreamGuard:
    def __init__(self, session: GuardSession, holdback: int) -> None:
        self.session = session
        self.holdback = holdback
        self.sctx = session.scan_context("output")
        self.windowed = tuple(r for r in session.output_rules if not r.scanner.whole_text)
        self.whole = tuple(r for r in session.output_rules if r.scanner.whole_text)
        self.max_pending = 8 * holdback + 1024
        self.tool_rules = tuple(r for r in self.windowed if r.scanner.scans_every_field)
        self.choices: dict[int, _Channel] = {}
        self.calls: dict[tuple[int, int], _Channel] = {}  # (choice, tool call) -> arguments
        self.last: dict[str, Any] | None = None

    async def wrap(self, result: StreamResult) -> StreamResult:
        """The stream with its answer guarded. A block in the first chunk raises here (the
        client gets a plain error response); later, it ends the stream with an error event."""
        ctx = self.session.ctx
        try:
            first = await self.process(result.first)
        except BaseException:
            await result.aclose()
            raise

        async def guarded() -> AsyncIterator[dict[str, Any]]:
            try:
                async for chunk in result.rest:
                    yield await self.process(chunk)
                for chunk in await self.finish():
                    yield chunk
            except ContentBlocked as exc:
                ctx.error = exc
                raise

        return StreamResult(first=first, rest=guarded(), closers=result.closers)

    async def process(self, chunk: dict[str, Any]) -> dict[str, Any]:
        self.last = chunk
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = int(choice.get("index", 0))
            final = choice.get("finish_reason") is not None
            found = _delta(choice)
            text = found[0].get(found[1]) if found else None
            if not isinstance(text, str):
                text = ""
            if text or final:
                st = self.choices.setdefault(index, _Channel(self.windowed))
                st.pending += text
                out = await self._release(st, index, final)
                if found is not None:
                    found[0][found[1]] = out
            delta = choice.get("delta")
            if isinstance(delta, dict):
                await self._tool_calls(delta, index, final)
        return chunk

    async def _tool_calls(self, delta: dict[str, Any], index: int, final: bool) -> None:
        """Hold back and scan each tool call's arguments like content; on the choice's last
        chunk, release what is still held into it."""
        if not (self.tool_rules or self.session.pseudonyms.by_placeholder):
            return
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(call.get("index", 0), int):
                continue
            args = fn.get("arguments")
            if not isinstance(args, str):
                continue
            st = self.calls.setdefault((index, call.get("index", 0)),
                                       _Channel(self.tool_rules, in_json=True))
            st.pending += args
            fn["arguments"] = await self._release(st, index, final)
        if final:
            held = await self._flush_calls(index)
            if held:
                delta["tool_calls"] = [*(calls if isinstance(calls, list) else ()), *held]

    async def _flush_calls(self, index: int) -> list[dict[str, Any]]:
        """The held arguments of choice ``index``'s tool calls, as tool call deltas."""
        out: list[dict[str, Any]] = []
        for (choice, call), st in self.calls.items():
            if choice == index and st.pending:
                text = await self._release(st, index, final=True)
                if text:
                    out.append({"index": call, "function": {"arguments": text}})
        return out

    async def _release(self, st: _Channel, index: int, final: bool) -> str:
        if not final and len(st.pending) < 2 * self.holdback:
            return ""
        window = st.tail + st.pending
        base = st.sent - len(st.tail)
        cut = len(st.pending) if final else len(st.pending) - self.holdback
        hits = await scan(st.rules, window, self.sctx)
        edits: list[Edit] = []
        block = False
        deferred = []
        for hit in hits:
            d = hit.detection
            if d.start is not None and d.end is not None:
                start, end = d.start - len(st.tail), d.end - len(st.tail)
                if end <= 0:
                    continue  # wholly in text already sent and already judged
                if end > cut and start >= 0:
                    deferred.append(start)  # not complete yet: wait for more text
                    continue
                key: tuple[object, ...] = (hit.rule.name, d.type, base + d.start, base + d.end)
            else:
                key = (hit.rule.name, d.type)
            if key in st.seen:
                continue
            st.seen.add(key)
            action = effective_action(hit)
            self.session.note(hit, action, "output", index, offset=base)
            if action == "block":
                block = True
            elif action == "redact" and d.start is not None and d.end is not None:
                edits.append(Edit(max(0, d.start - len(st.tail)), d.end - len(st.tail), d.type,
                                  False))
        if block:
            raise self.session.blocked("output")
        if deferred and len(st.pending) < self.max_pending:
            cut = min(cut, *deferred)
        if edits:
            cut = max([cut, *(e.end for e in edits)])
        released = apply(st.pending[:cut], edits, self.session.pseudonyms)
        rest = st.pending[cut:]
        if not final:
            keep = open_placeholder_at(released, len(released))
            released, rest = released[:keep], released[keep:] + rest
        st.pending = rest
        st.tail = (st.tail + released)[-TAIL:]
        st.sent += len(released)
        st.text.append(released)
        restored = self.session.pseudonyms.restore(released, st.in_json)
        if not st.in_json and self.session.pseudonyms.by_placeholder:
            # The record keeps the answer's placeholders, never the values behind them.
            stored = self.session.ctx.stored_answer
            if stored is None:
                stored = self.session.ctx.stored_answer = []
            stored.append(released)
        return restored

    async def finish(self) -> list[dict[str, Any]]:
        """Text still held (a stream that ended without finish_reason), then the whole-answer
        check."""
        out: list[dict[str, Any]] = []
        for index, st in self.choices.items():
            if st.pending:
                text = await self._release(st, index, final=True)
                if text:
                    out.append(self._chunk(index, {"content": text}, {"text": text}))
        for index in sorted({choice for choice, _ in self.calls}):
            held = await self._flush_calls(index)
            if held:
                out.append(self._chunk(index, {"tool_calls": held}, None))
        for index, st in self.choices.items():
            whole = "".join(st.text)
            block = False
            for hit in await scan(self.whole, whole, self.sctx) if self.whole else ():
                d = hit.detection
                key: tuple[object, ...] = ((hit.rule.name, d.type, d.start, d.end)
                                           if d.has_span else (hit.rule.name, d.type))
                if key in st.seen:
                    continue
                st.seen.add(key)
                action = effective_action(hit)
                self.session.note(hit, action, "output", index)
                block = block or action == "block"
            if block:
                raise self.session.blocked("output")
        return out

    def _chunk(self, index: int, delta: dict[str, Any],
               fields: dict[str, Any] | None) -> dict[str, Any]:
        """A chunk of the stream's kind carrying ``delta`` (chat) or ``fields`` (completion)."""
        last = self.last or {}
        chat = last.get("object") == "chat.completion.chunk"
        choice: dict[str, Any] = {"index": index, "finish_reason": None}
        if chat:
            choice["delta"] = delta
        else:
            choice.update(fields or {})
        return {k: last[k] for k in ("id", "object", "created", "model") if k in last} | {
            "choices": [choice]}
