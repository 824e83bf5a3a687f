"""A thousand SSE streams held at once through one gateway: none dropped, cut or mixed up."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.helpers import GatewayThread

STREAMS = 1000
WORDS = 12


async def one_stream(session: aiohttp.ClientSession, url: str, i: int) -> tuple[str, float, float]:
    prompt = " ".join(f"s{i}w{k}" for k in range(WORDS))
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    text, first, done = "", 0.0, False
    async with session.post(url + "/v1/chat/completions", data=orjson.dumps(body)) as resp:
        assert resp.status == 200
        buf = b""
        async for data in resp.content.iter_any():
            buf += data
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                payload = event.removeprefix(b"data: ")
                if payload == b"[DONE]":
                    done = True
                    continue
                if not first:
                    first = time.monotonic()
                for c in orjson.loads(payload)["choices"]:
                    text += c["delta"].get("content") or ""
    assert done, f"stream {i} ended without [DONE]"
    assert text == prompt, f"stream {i} got {text!r}"
    return text, first, time.monotonic()


@pytest.mark.slow
def test_a_thousand_concurrent_streams() -> None:
    # 12 tokens at 4 tokens/s: each stream lasts about three seconds.
    config = {"models": [{"name": "slow", "deployments": [
        {"id": "f", "provider": "fake", "params": {"tokens_per_s": 4}}]}]}
    with GatewayThread(config) as gw:
        async def main() -> list[tuple[str, float, float]]:
            connector = aiohttp.TCPConnector(limit=0)
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                return await asyncio.gather(*(one_stream(session, gw.url, i)
                                              for i in range(STREAMS)))

        results = asyncio.run(main())
    assert len(results) == STREAMS
    last_start = max(first for _, first, _ in results)
    first_end = min(end for _, _, end in results)
    # Every stream had sent its first token before any stream finished: all were held at once.
    assert last_start < first_end
    assert max(end for _, _, end in results) - min(first for _, first, _ in results) > 2.5
