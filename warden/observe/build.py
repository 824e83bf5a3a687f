"""Turning a finished request context into its Record and Payload."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from warden.config import PayloadPolicy
from warden.errors import ContentBlocked, WardenError
from warden.observe.bounds import MAX_TAG_VALUE, MAX_TAGS, bound_record
from warden.observe.record import AttemptRecord, Payload, Record, Status
from warden.observe.redact import redact
from warden.pipeline.context import RequestContext
from warden.providers.base import Completion

TAG_PREFIX = "x-warden-tag-"


def _tags(headers: Mapping[str, str], admin: Mapping[str, str]) -> dict[str, str]:
    # The key's tags win over the client's headers, and come first (of MAX_TAGS kept): they
    # are the admin's word.
    tags: dict[str, str] = dict(admin)
    for key, value in headers.items():
        if key.lower().startswith(TAG_PREFIX) and len(tags) < MAX_TAGS:
            tags.setdefault(key[len(TAG_PREFIX):].lower(), value[:MAX_TAG_VALUE])
    return tags


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    return dict(meta) if isinstance(meta, dict) else {}


def record_of(ctx: RequestContext, http_status: int, error: WardenError | None,
              status: Status | None = None) -> Record:
    """The Record of a request that has ended with ``http_status``, within the bounds that
    every store takes (``warden.observe.bounds``): what a client or an upstream sent is cut and
    cleaned here, once, the same way for every backend."""
    ended = time.time()
    latency = ctx.elapsed()
    usage = ctx.usage
    input_tokens = usage.prompt_tokens if usage else 0
    output_tokens = usage.completion_tokens if usage else 0
    cached = usage.cached_tokens if usage else 0
    tps = None
    if output_tokens and ctx.ttft_s is not None and latency > ctx.ttft_s:
        tps = output_tokens / (latency - ctx.ttft_s)
    elif output_tokens and latency > 0:
        tps = output_tokens / latency
    if not any(200 <= a.status < 300 for a in ctx.attempts):
        cost: float | None = 0.0  # no provider answered (refused, blocked, failed): nothing billed
    else:
        cost = ctx.price.cost(input_tokens, output_tokens, cached) if ctx.price and usage else None
    meta = _metadata(ctx.body)
    headers = ctx.headers
    key = ctx.key
    return bound_record(Record(
        request_id=ctx.request_id,
        client_request_id=ctx.client_request_id,
        trace_id=ctx.traceparent.split("-")[1] if ctx.traceparent.count("-") == 3 else "",
        started_at=ctx.started_at,
        ended_at=ended,
        api=ctx.kind,
        model=ctx.model or "",
        status=status or ("blocked" if isinstance(error, ContentBlocked)
                          else "ok" if error is None and http_status < 400 else "error"),
        http_status=http_status,
        latency_s=latency,
        ttft_s=ctx.ttft_s,
        stream=ctx.stream,
        deployment=ctx.deployment,
        provider=ctx.provider,
        upstream_model=ctx.upstream_model,
        key_id=key.id if key is not None else None,
        team=key.team if key is not None else None,
        end_user=(ctx.body.get("user") if isinstance(ctx.body.get("user"), str) else None)
        or headers.get("x-warden-user"),
        session_id=headers.get("x-warden-session")
        or (str(meta["session_id"]) if "session_id" in meta else None),
        error_type=error.type if error is not None else None,
        error_message=error.message[:1000] if error is not None else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached,
        output_tokens_per_s=tps,
        cost_usd=cost,
        attempts=[AttemptRecord(model=a.model, deployment=a.deployment, provider=a.provider,
                                started_s=a.started_s, latency_s=a.latency_s, status=a.status,
                                error_type=a.error_type, error=a.error)
                  for a in ctx.attempts],
        findings=list(ctx.findings),
        tags=_tags(headers, key.tags if key is not None else {}),
        metadata=meta,
    ))


def _prompt_of(body: dict[str, Any]) -> str | None:
    for key in ("messages", "prompt", "input"):
        if key in body:
            return orjson.dumps(body[key]).decode()
    return None


def completion_text(result: Completion) -> str:
    parts = []
    for choice in result.body.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            if message.get("tool_calls"):
                parts.append(orjson.dumps(message["tool_calls"]).decode())
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "\n".join(parts)


def payload_of(ctx: RequestContext, policy: PayloadPolicy) -> Payload | None:
    """The request's text as the policy allows; None under ``none``.

    The prompt is the one the provider was sent: where a guard redacted or pseudonymized it,
    the rewritten one (a planted canary left out), never the client's original. Values a guard
    replaced with placeholders stay placeholders in the stored completion too, though the
    client got them back.
    """
    if policy == "none":
        return None
    prompt = _prompt_of(ctx.stored_body or ctx.body)
    completion = "".join(ctx.output) if ctx.output else None
    if isinstance(ctx.result, Completion) and ctx.kind != "embedding":
        completion = completion_text(ctx.result)
    if ctx.stored_answer is not None:
        completion = "".join(ctx.stored_answer)
    if policy == "redacted":
        prompt = redact(prompt) if prompt is not None else None
        completion = redact(completion) if completion is not None else None
    return Payload(request_id=ctx.request_id, policy=policy, prompt=prompt, completion=completion)
