"""Cheap structural checks of what an upstream answered, in the OpenAI wire format.

Warden forwards an upstream's answer to the client and reads a few of its fields itself: the
choices, their index, text, tool calls and finish reason, the embeddings, and the usage. Every
answer is checked here, for the JSON type of exactly those fields, before anything else reads
it; a wrong one raises ``UpstreamBadResponse`` (a 502, retryable: the deployment is failing).
Fields Warden neither reads nor depends on pass through untouched. The checks are ``type(x) is``
tests on the fields named above, no schema library: 0.4 µs for a streamed chunk, 0.5 µs for a
whole chat answer, ~9 µs for a 1536-dimension embedding (half what parsing the chunk costs).

Usage numbers are checked apart, by ``check_usage``: they are the upstream's word on what a
request cost, so a usage that is malformed or implausible does not fail the request. It is
replaced by an estimate from the text (``estimate_usage``) and the reason is returned, for the
caller to record.
"""

from __future__ import annotations

from typing import Any

from warden.errors import UpstreamBadResponse
from warden.providers.base import ApiKind, Usage

MAX_USAGE_TOKENS = 10_000_000
"""More tokens than any one request uses today: a larger count is a broken upstream's."""

TOKENS_PER_CHAR = 4
"""A token carries at least one UTF-8 byte of text, and a character at most four bytes."""

TOKEN_SLACK = 64
"""Tokens an answer may count without visible text: special, stop and padding tokens."""

_HIDDEN = ("reasoning_tokens", "audio_tokens", "rejected_prediction_tokens")
_REASONING = ("reasoning_content", "reasoning")


def bad(where: str, what: str) -> UpstreamBadResponse:
    """The error for an answer whose ``what`` is wrong."""
    return UpstreamBadResponse(f"{where}: upstream sent a malformed answer: {what}")


def check_answer(kind: ApiKind, body: Any, where: str, *, base64: bool = False) -> int:
    """Check a whole (non-streamed) answer; return the characters of text it carries.

    ``base64`` allows embeddings encoded as strings (the request asked encoding_format
    'base64')."""
    if type(body) is not dict:
        raise bad(where, "the answer is not a JSON object")
    if kind == "embedding":
        return _embeddings(body, where, base64)
    choices = body.get("choices")
    if type(choices) is not list:
        if "error" in body:
            raise bad(where, f"an error object with a success status: {_message(body)}")
        raise bad(where, "'choices' is not a list")
    inner = "message" if kind == "chat" else None
    chars = 0
    for i, choice in enumerate(choices):
        chars += _choice(choice, inner, where, i, required=True)
    return chars


def check_chunk(kind: ApiKind, chunk: Any, where: str) -> int:
    """Check one streamed chunk; return the characters of text it carries."""
    if type(chunk) is not dict:
        raise bad(where, "a stream chunk is not a JSON object")
    choices = chunk.get("choices")
    if choices is None:
        return 0  # a usage-only chunk may leave the choices out
    if type(choices) is not list:
        raise bad(where, "a stream chunk's 'choices' is not a list")
    inner = "delta" if kind == "chat" else None
    chars = 0
    for i, choice in enumerate(choices):
        chars += _choice(choice, inner, where, i, required=False)
    return chars


def _message(body: dict[str, Any]) -> str:
    err = body.get("error")
    msg = err.get("message") if type(err) is dict else err
    return msg[:300] if type(msg) is str else "no message"


def _choice(choice: Any, inner: str | None, where: str, i: int, *, required: bool) -> int:
    if type(choice) is not dict:
        raise bad(where, f"choices[{i}] is not an object")
    index = choice.get("index")
    if index is not None and (type(index) is not int or index < 0):
        raise bad(where, f"choices[{i}].index is not a non-negative integer")
    reason = choice.get("finish_reason")
    if reason is not None and type(reason) is not str:
        raise bad(where, f"choices[{i}].finish_reason is not a string")
    if inner is None:  # a text completion
        text = choice.get("text")
        if text is None:
            return 0
        if type(text) is not str:
            raise bad(where, f"choices[{i}].text is not a string")
        return len(text)
    message = choice.get(inner)
    if message is None and not required:
        return 0
    if type(message) is not dict:
        raise bad(where, f"choices[{i}].{inner} is not an object")
    role = message.get("role")
    if role is not None and type(role) is not str:
        raise bad(where, f"choices[{i}].{inner}.role is not a string")
    chars = 0
    for key in ("content", "refusal"):
        value = message.get(key)
        if value is not None:
            if type(value) is not str:
                raise bad(where, f"choices[{i}].{inner}.{key} is not a string")
            chars += len(value)
    for key in _REASONING:  # text a reasoning model returns beside its answer (vLLM, ...)
        value = message.get(key)
        if type(value) is str:
            chars += len(value)
    calls = message.get("tool_calls")
    if calls is not None:
        chars += _tool_calls(calls, where, f"choices[{i}].{inner}.tool_calls")
    return chars


def _tool_calls(calls: Any, where: str, path: str) -> int:
    if type(calls) is not list:
        raise bad(where, f"{path} is not a list")
    chars = 0
    for j, call in enumerate(calls):
        if type(call) is not dict:
            raise bad(where, f"{path}[{j}] is not an object")
        index = call.get("index")
        if index is not None and (type(index) is not int or index < 0):
            raise bad(where, f"{path}[{j}].index is not a non-negative integer")
        fn = call.get("function")
        if fn is None:
            continue
        if type(fn) is not dict:
            raise bad(where, f"{path}[{j}].function is not an object")
        for key in ("name", "arguments"):
            value = fn.get(key)
            if value is not None:
                if type(value) is not str:
                    raise bad(where, f"{path}[{j}].function.{key} is not a string")
                chars += len(value)
    return chars


def _embeddings(body: dict[str, Any], where: str, base64: bool) -> int:
    data = body.get("data")
    if type(data) is not list:
        raise bad(where, "'data' is not a list")
    for i, item in enumerate(data):
        if type(item) is not dict:
            raise bad(where, f"data[{i}] is not an object")
        vector = item.get("embedding")
        if type(vector) is list:
            # sum() runs in C and refuses strings, nulls, lists and objects: ~4 µs for 1536
            # numbers, a sixth of a per-element type test (JSON true would pass, as 1).
            try:
                sum(vector)
            except TypeError:
                raise bad(where, f"data[{i}].embedding holds something other than "
                                 "numbers") from None
        elif not (base64 and type(vector) is str):
            raise bad(where, f"data[{i}].embedding is not a list of numbers")
        index = item.get("index")
        if index is not None and (type(index) is not int or index < 0):
            raise bad(where, f"data[{i}].index is not a non-negative integer")
    return 0


# --- usage -------------------------------------------------------------------------------------

def _count(data: dict[str, Any], key: str, limit: int) -> int:
    """A token count of ``data``; ValueError naming the key when it is not a plausible one."""
    value = data.get(key)
    if value is None:
        return 0
    if type(value) is not int:  # bool, float, string, object: none is a count
        raise ValueError(f"'{key}' is not an integer")
    if not 0 <= value <= limit:
        raise ValueError(f"'{key}' = {value} is outside 0..{limit}")
    return value


def check_usage(data: Any, output_chars: int) -> tuple[Usage | None, str | None]:
    """The usage of a wire ``usage`` object, or why it was rejected.

    ``(None, None)`` when the upstream reported none (absent or null). A usage is rejected when
    a count is not an integer (booleans are not), is negative or above ``MAX_USAGE_TOKENS``, a
    detail exceeds its total, or ``completion_tokens`` (less the reasoning, audio and rejected
    prediction tokens that produce no text) exceeds what ``output_chars`` characters of text
    could hold: ``TOKENS_PER_CHAR`` per character plus ``TOKEN_SLACK``.
    """
    if data is None:
        return None, None
    if type(data) is not dict:
        return None, "usage is not an object"
    try:
        prompt = _count(data, "prompt_tokens", MAX_USAGE_TOKENS)
        completion = _count(data, "completion_tokens", MAX_USAGE_TOKENS)
        cached = hidden = 0
        details = data.get("prompt_tokens_details")
        if details is not None:
            if type(details) is not dict:
                raise ValueError("'prompt_tokens_details' is not an object")
            cached = _count(details, "cached_tokens", prompt)
        details = data.get("completion_tokens_details")
        if details is not None:
            if type(details) is not dict:
                raise ValueError("'completion_tokens_details' is not an object")
            hidden = sum(_count(details, key, completion) for key in _HIDDEN)
        allowed = output_chars * TOKENS_PER_CHAR + TOKEN_SLACK
        if completion - hidden > allowed:
            raise ValueError(f"'completion_tokens' = {completion} is more than "
                             f"{output_chars} characters of text can hold")
    except ValueError as exc:
        return None, str(exc)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached), None


def estimate_usage(prompt_chars: int, output_chars: int) -> Usage:
    """Token counts guessed from text length (about four characters a token)."""
    return Usage(prompt_tokens=-(-prompt_chars // 4), completion_tokens=-(-output_chars // 4))
