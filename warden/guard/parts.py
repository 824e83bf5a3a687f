"""Where the text is in an OpenAI request or answer, and how to put changed text back.

A request's *parts* are every text the provider will see, in body order: each message's
content (a string, or each text part of a multi-part content), a completion's prompt(s), an
embedding's input(s) — the *conversation* — and every other string of the body: system and
developer messages, a message's ``name``, tool calls (function names and arguments), tool
definitions, ``user``, ``prediction``, ``metadata``, image URLs and file names in content parts,
a completion's ``suffix``, ... Values that are never text for anyone (``model``, ``role``,
``type``, ids, enums) and binary data (base64 audio, files and ``data:`` URLs) are left out.

An answer's parts are each choice's content (or text) and refusal, and its tool calls'
arguments. Replacing parts copies only the containers on the way to a changed text, each once;
the client's body is never mutated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warden.providers.base import ApiKind

Path = tuple[str | int, ...]
_OPERATOR_ROLES = ("system", "developer")
# Keys whose values are never free text: names of models and roles, types, ids and enums.
_NOT_TEXT = frozenset({
    "model", "role", "type", "id", "tool_call_id", "object", "detail", "format",
    "encoding_format", "service_tier", "reasoning_effort", "verbosity", "modalities", "voice",
    "file_id", "logit_bias", "stream_options"})
# Keys whose values are binary data in base64 (audio, files).
_BINARY = frozenset({"data", "file_data"})
# Keys of a content part whose string is the message's text.
_TEXT_KEYS = frozenset({"text", "refusal"})


@dataclass(slots=True, frozen=True)
class Part:
    """One text: where it is, what it says, and whether it is conversation (a message's text, a
    prompt, an input) or another field. ``role`` is its message's role, for a message's text."""

    path: Path
    text: str
    conversation: bool = True
    role: str | None = None
    in_json: bool = False  # the text is JSON (tool call arguments): values put in are escaped


def request_parts(kind: ApiKind, body: Mapping[str, Any]) -> list[Part]:
    """Every text of a request body the provider will see (see the module docstring)."""
    parts: list[Part] = []
    main = "messages" if kind == "chat" else "prompt" if kind == "completion" else "input"
    for key, value in body.items():
        if key == main and kind == "chat":
            _messages(parts, value)
        elif key == main:
            if isinstance(value, str):
                parts.append(Part((key,), value))
            elif isinstance(value, list):  # a batch of texts (lists of token ids hold none)
                parts += [Part((key, i), v) for i, v in enumerate(value) if isinstance(v, str)]
        else:
            _walk(parts, (key,), value)
    return parts


def _messages(parts: list[Part], messages: Any) -> None:
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role") if isinstance(message.get("role"), str) else None
        said = role not in _OPERATOR_ROLES
        for key, value in message.items():
            path: Path = ("messages", i, key)
            if key != "content":
                _walk(parts, path, value)
            elif isinstance(value, str):
                parts.append(Part(path, value, said, role))
            elif isinstance(value, list):
                for j, piece in enumerate(value):
                    if not isinstance(piece, dict):
                        continue
                    for k, v in piece.items():
                        if k in _TEXT_KEYS and isinstance(v, str):
                            parts.append(Part((*path, j, k), v, said, role))
                        else:
                            _walk(parts, (*path, j, k), v)


def _walk(parts: list[Part], path: Path, value: Any) -> None:
    """Every string under ``value`` but those of ``_NOT_TEXT`` and binary data, in order. Only
    strings are skipped by their key: a dict under such a key is walked (a tool parameter may be
    named ``type``). A stack, not recursion: a deeply nested body (a JSON schema) cannot exhaust
    the stack."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        at, node = stack.pop()
        key = at[-1]
        if isinstance(node, str):
            if node and key not in _NOT_TEXT and key not in _BINARY \
                    and not (key == "url" and node[:5].lower() == "data:"):
                parts.append(Part(at, node, conversation=False,
                                  in_json=key == "arguments"))
        elif isinstance(node, dict):
            stack.extend(((*at, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*at, i), v) for i, v in reversed(list(enumerate(node))))


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
    """The texts of a non-streamed answer: each choice's message content (or text) and refusal,
    and the arguments of its tool calls (other fields, for the scanners of every field)."""
    parts: list[Part] = []
    for i, choice in enumerate(body.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            at: Path = ("choices", i, "message")
            for key in ("content", "refusal"):
                if isinstance(message.get(key), str):
                    parts.append(Part((*at, key), message[key]))
            for j, call in enumerate(message.get("tool_calls") or ()):
                args = call.get("function", {}).get("arguments") if isinstance(call, dict) else None
                if isinstance(args, str):
                    parts.append(Part((*at, "tool_calls", j, "function", "arguments"), args,
                                      conversation=False, in_json=True))
            legacy = message.get("function_call")
            if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
                parts.append(Part((*at, "function_call", "arguments"), legacy["arguments"],
                                  conversation=False, in_json=True))
        elif isinstance(choice.get("text"), str):
            parts.append(Part(("choices", i, "text"), choice["text"]))
    return parts


def replace(body: Mapping[str, Any], changes: Mapping[Path, str]) -> dict[str, Any]:
    """A copy of ``body`` with the text at each path replaced (containers on the way copied,
    each at most once however many changes lie under it)."""
    out: dict[str, Any] = dict(body)
    copied: set[Path] = {()}
    for path, text in changes.items():
        node: Any = out
        for depth, step in enumerate(path[:-1], 1):
            if path[:depth] not in copied:
                node[step] = copy.copy(node[step])
                copied.add(path[:depth])
            node = node[step]
        node[path[-1]] = text
    return out
