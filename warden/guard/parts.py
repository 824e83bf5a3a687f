"""Where the text is in an OpenAI request or answer, and how to put changed text back.

A request's *parts* are the texts a guard scans, in order: each chat message's content (or each
text part of a multi-part content), a completion's prompt(s), an embedding's input(s). System and
developer messages are the operator's own and are not scanned. Replacing parts copies only the
containers on the way to a changed text; the client's body is never mutated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warden.providers.base import ApiKind

Path = tuple[str | int, ...]
_OPERATOR_ROLES = ("system", "developer")


@dataclass(slots=True, frozen=True)
class Part:
    path: Path
    text: str


def request_parts(kind: ApiKind, body: Mapping[str, Any]) -> list[Part]:
    """The scanned texts of a request body."""
    parts: list[Part] = []
    if kind == "chat":
        for i, message in enumerate(body.get("messages") or ()):
            if not isinstance(message, dict) or message.get("role") in _OPERATOR_ROLES:
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(Part(("messages", i, "content"), content))
            elif isinstance(content, list):
                for j, piece in enumerate(content):
                    if isinstance(piece, dict) and isinstance(piece.get("text"), str):
                        parts.append(Part(("messages", i, "content", j, "text"), piece["text"]))
        return parts
    key = "prompt" if kind == "completion" else "input"
    value = body.get(key)
    if isinstance(value, str):
        parts.append(Part((key,), value))
    elif isinstance(value, list):
        parts += [Part((key, i), v) for i, v in enumerate(value) if isinstance(v, str)]
    return parts


def system_prompt(body: Mapping[str, Any]) -> str | None:
    """The first system (or developer) message's text."""
    for message in body.get("messages") or ():
        if isinstance(message, dict) and message.get("role") in _OPERATOR_ROLES:
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return None


def with_system_prompt(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """A copy of ``body`` whose first system message (a plain string) reads ``text``; None
    when there is no such message."""
    for i, message in enumerate(body.get("messages") or ()):
        if (isinstance(message, dict) and message.get("role") in _OPERATOR_ROLES
                and isinstance(message.get("content"), str)):
            return replace(body, {("messages", i, "content"): text})
    return None


def answer_parts(body: Mapping[str, Any]) -> list[Part]:
    """The texts of a non-streamed answer: each choice's message content (or text)."""
    parts: list[Part] = []
    for i, choice in enumerate(body.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            parts.append(Part(("choices", i, "message", "content"), message["content"]))
        elif isinstance(choice.get("text"), str):
            parts.append(Part(("choices", i, "text"), choice["text"]))
    return parts


def replace(body: Mapping[str, Any], changes: Mapping[Path, str]) -> dict[str, Any]:
    """A copy of ``body`` with the text at each path replaced (containers on the way copied)."""
    out: dict[str, Any] = dict(body)
    for path, text in changes.items():
        node: Any = out
        for step in path[:-1]:
            child = node[step]
            child = copy.copy(child)
            node[step] = child
            node = child
        node[path[-1]] = text
    return out
