"""Parse: the raw body becomes a validated OpenAI request (after authentication, so that
unauthenticated callers learn nothing about the API from validation errors)."""

from __future__ import annotations

import orjson

from warden.api.schemas import SCHEMAS, validate
from warden.errors import InvalidRequest
from warden.pipeline.context import RequestContext
from warden.pipeline.stage import Next


class ParseBody:
    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        if not ctx.raw:
            raise InvalidRequest("The request body is empty; send a JSON object.")
        try:
            body = orjson.loads(ctx.raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"The request body is not valid JSON: {exc}.",
                                 code="invalid_json") from None
        parsed = validate(SCHEMAS[ctx.kind], body)
        ctx.body = body
        ctx.model = body["model"]
        ctx.stream = ctx.kind != "embedding" and body.get("stream") is True
        options = getattr(parsed, "stream_options", None)
        ctx.include_usage = bool(options and options.include_usage)
        await call_next(ctx)
