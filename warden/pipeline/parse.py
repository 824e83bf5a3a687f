"""Parse: the raw body becomes a validated OpenAI request (after authentication, so that
unauthenticated callers learn nothing about the API from validation errors)."""

from __future__ import annotations

import re

import orjson

from warden.api.schemas import SCHEMAS, validate
from warden.errors import InvalidRequest
from warden.pipeline.context import RequestContext
from warden.pipeline.stage import Next

MAX_DEPTH = 64
"""The deepest nesting of arrays and objects a body may have. orjson reads 1,024 levels but
writes only 254, and every part that writes the body again (the provider's request, the
record's payload) must be able to: no OpenAI request needs more than a few dozen levels."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw``, a valid JSON text; linear in its length.

    Strings go first (a bracket inside one is text), then everything but brackets."""
    depth = deepest = 0
    for b in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if b in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class ParseBody:
    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        if not ctx.raw:
            raise InvalidRequest("The request body is empty; send a JSON object.")
        try:
            body = orjson.loads(ctx.raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"The request body is not valid JSON: {exc}.",
                                 code="invalid_json") from None
        # Fewer brackets than the bound cannot nest past it: most bodies stop at this count.
        few = ctx.raw.count(b"[") + ctx.raw.count(b"{") <= MAX_DEPTH
        depth = 0 if few else nesting_depth(ctx.raw)
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"The request body nests arrays and objects {depth} levels "
                                 f"deep; at most {MAX_DEPTH} are allowed.",
                                 code="body_too_deep")
        parsed = validate(SCHEMAS[ctx.kind], body)
        ctx.body = body
        ctx.model = body["model"]
        ctx.stream = ctx.kind != "embedding" and body.get("stream") is True
        options = getattr(parsed, "stream_options", None)
        ctx.include_usage = bool(options and options.include_usage)
        await call_next(ctx)
