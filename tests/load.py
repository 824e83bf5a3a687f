"""A small async load generator over real HTTP, for fault and reload tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson


@dataclass
class LoadResult:
    ok: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    deployments: dict[str, int] = field(default_factory=dict)


def chat_body(i: int, stream: bool) -> dict[str, Any]:
    return {"model": "m", "stream": stream,
            "messages": [{"role": "user", "content": f"request {i} says hello"}]}


async def _one(session: aiohttp.ClientSession, url: str, i: int, stream: bool,
               result: LoadResult, model: str, id_prefix: str | None) -> None:
    body = chat_body(i, stream)
    body["model"] = model
    expected = f"request {i} says hello"
    headers = {"content-type": "application/json"}
    if id_prefix is not None:
        headers["x-request-id"] = f"{id_prefix}{i}"
    try:
        async with session.post(url + "/v1/chat/completions", data=orjson.dumps(body),
                                headers=headers) as resp:
            raw = await resp.read()
            if resp.status != 200:
                result.failures.append((resp.status, raw.decode()[:300]))
                return
            dep = resp.headers.get("x-warden-deployment", "?")
            if stream:
                events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
                if not events or events[-1] != "[DONE]":
                    result.failures.append((200, f"stream cut: {raw.decode()[-300:]}"))
                    return
                text = "".join(
                    (c.get("delta") or {}).get("content") or ""
                    for e in events[:-1] for c in orjson.loads(e).get("choices", []))
            else:
                text = orjson.loads(raw)["choices"][0]["message"]["content"]
            if text != expected:
                result.failures.append((200, f"wrong answer {text!r} for {expected!r}"))
                return
            result.ok += 1
            result.deployments[dep] = result.deployments.get(dep, 0) + 1
    except aiohttp.ClientError as exc:
        result.failures.append((0, repr(exc)))


async def run_load(
    url: str, n: int, concurrency: int, *, model: str = "m",
    at: dict[int, Callable[[], Awaitable[None]]] | None = None, id_prefix: str | None = None,
) -> LoadResult:
    """Send ``n`` chat requests (every third one streamed) with ``concurrency`` workers.
    ``at`` maps a request number to an action run when that request is issued. With
    ``id_prefix``, request ``i`` carries the request id ``f"{id_prefix}{i}"``."""
    result = LoadResult()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    actions = dict(at or {})
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                action = actions.pop(i, None)
                if action is not None:
                    await action()
                await _one(session, url, i, i % 3 == 0, result, model, id_prefix)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result
