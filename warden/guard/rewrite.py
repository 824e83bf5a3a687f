"""Changing text by findings: redaction (``[TYPE]``) and pseudonymization (``<TYPE_n>``, stable
within a request and restored in the answer, so the provider never sees the value)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
_SAFE_TYPE = re.compile(r"[^A-Z0-9_]")


def _label(kind: str) -> str:
    return _SAFE_TYPE.sub("_", kind.upper()) or "VALUE"


@dataclass(slots=True, frozen=True)
class Edit:
    """Replace ``text[start:end]``: with ``[TYPE]`` (redact) or a placeholder (pseudonymize)."""

    start: int
    end: int
    kind: str
    pseudonymize: bool


@dataclass(slots=True)
class Pseudonyms:
    """One request's value <-> placeholder table."""

    by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    by_placeholder: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def placeholder(self, kind: str, value: str) -> str:
        label = _label(kind)
        key = (label, value)
        found = self.by_value.get(key)
        if found is None:
            n = self._counts.get(label, 0) + 1
            self._counts[label] = n
            found = f"<{label}_{n}>"
            self.by_value[key] = found
            self.by_placeholder[found] = value
        return found

    def restore(self, text: str, in_json: bool = False) -> str:
        """The text with every known placeholder replaced by its value; escaped as in a JSON
        string where ``text`` is JSON (tool call arguments), so that it stays valid JSON."""
        if not self.by_placeholder or "<" not in text:
            return text

        def value(m: re.Match[str]) -> str:
            found = self.by_placeholder.get(m.group(0))
            if found is None:
                return m.group(0)
            return orjson.dumps(found).decode()[1:-1] if in_json else found

        return _PLACEHOLDER.sub(value, text)


def merge(edits: Iterable[Edit]) -> list[Edit]:
    """Edits sorted by start, overlapping ones merged (the first one's type wins; any
    pseudonymize in a merged group makes it a pseudonym, so its value can come back)."""
    out: list[Edit] = []
    for e in sorted(edits, key=lambda e: (e.start, -e.end)):
        if e.end <= e.start:
            continue
        if out and e.start < out[-1].end:
            last = out[-1]
            out[-1] = Edit(last.start, max(last.end, e.end), last.kind,
                           last.pseudonymize or e.pseudonymize)
        else:
            out.append(e)
    return out


def apply(text: str, edits: Iterable[Edit], pseudonyms: Pseudonyms) -> str:
    """``text`` with the edits made."""
    merged = merge(edits)
    if not merged:
        return text
    parts: list[str] = []
    pos = 0
    for e in merged:
        parts.append(text[pos:e.start])
        value = text[e.start:e.end]
        parts.append(pseudonyms.placeholder(e.kind, value) if e.pseudonymize
                     else f"[{_label(e.kind)}]")
        pos = e.end
    parts.append(text[pos:])
    return "".join(parts)


def open_placeholder_at(text: str, cut: int) -> int:
    """A cut point that does not split a placeholder: ``cut`` moved back to a ``<`` it would
    leave unclosed (placeholders are short, so only the last 40 characters are looked at)."""
    start = text.rfind("<", max(0, cut - 40), cut)
    if start != -1 and text.find(">", start, cut) == -1:
        return start
    return cut
