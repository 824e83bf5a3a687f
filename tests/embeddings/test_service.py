"""The embedding service batches concurrent callers into few model runs, caches by text, and
gives the vectors an unbatched model run gives."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from tests.embeddings import require_model

np = pytest.importorskip("numpy", reason="numpy not installed: pip install 'warden[local]'")

from numpy.typing import NDArray  # noqa: E402

from warden.embeddings.service import EmbeddingService  # noqa: E402
from warden.errors import Unavailable, WardenError  # noqa: E402
from warden.lifecycle.integrity import ModelIntegrityError  # noqa: E402


class HashEmbedder:
    """A stand-in model: a vector from each text's hash; counts runs, can stall or fail."""

    dim = 8

    def __init__(self, delay_s: float = 0.0, fail_runs: int = 0) -> None:
        self.delay_s = delay_s
        self.fail_runs = fail_runs
        self.runs: list[list[str]] = []
        self.threads: set[str] = set()

    def embed_counted(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[int]]:
        self.threads.add(threading.current_thread().name)
        self.runs.append(list(texts))
        time.sleep(self.delay_s)
        if self.fail_runs:
            self.fail_runs -= 1
            raise RuntimeError("onnxruntime exploded")
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors, [len(t.split()) for t in texts]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[EmbeddingService, HashEmbedder]]:
    model = HashEmbedder()
    service = EmbeddingService(lambda: model, max_batch=8, cache_size=100)
    yield service, model
    await service.aclose()


async def test_concurrent_callers_share_model_runs(fake: tuple[EmbeddingService, HashEmbedder]) -> None:
    service, model = fake
    texts = [f"text number {i}" for i in range(20)]
    results = await asyncio.gather(*(service.embed([t]) for t in texts))
    assert len(model.runs) == service.stats.batches == 3  # 8 + 8 + 4, not 20
    assert all(len(run) <= 8 for run in model.runs)
    assert service.stats.texts == 20
    expected = model.embed_counted(texts)[0]
    assert [r[0] for r in results] == expected.tolist()


async def test_repeated_texts_come_from_the_cache(fake: tuple[EmbeddingService, HashEmbedder]) -> None:
    service, model = fake
    first = await service.embed(["a", "b", "a"])
    second = await service.embed(["b", "c"])
    assert first[0] == first[2] and first[1] == second[0]
    assert model.runs == [["a", "b"], ["c"]]  # a duplicate in flight is embedded once
    assert (service.stats.cache_hits, service.stats.cache_misses, service.stats.texts) == (1, 4, 3)
    counted = await service.embed_counted(["b", "two words"])
    assert counted.tokens == [1, 2]


async def test_the_cache_keeps_the_most_recently_used_texts() -> None:
    model = HashEmbedder()
    service = EmbeddingService(lambda: model, cache_size=2)
    try:
        await service.embed(["a"])
        await service.embed(["b"])
        await service.embed(["a"])       # a is now the most recent
        await service.embed(["c"])       # evicts b
        await service.embed(["a", "b"])
        assert model.runs == [["a"], ["b"], ["c"], ["b"]]
    finally:
        await service.aclose()


async def test_the_model_is_loaded_once_on_the_service_thread() -> None:
    loads: list[str] = []
    model = HashEmbedder()

    def load() -> HashEmbedder:
        loads.append(threading.current_thread().name)
        time.sleep(0.05)
        return model

    service = EmbeddingService(load)
    try:
        await asyncio.gather(service.ready(), service.embed(["x"]), service.embed(["y"]))
        assert len(loads) == 1 and loads[0].startswith("warden-embed")
        assert model.threads == {loads[0]}
    finally:
        await service.aclose()


async def test_a_failed_load_reaches_the_caller_and_is_tried_again() -> None:
    attempts: list[int] = []
    model = HashEmbedder()

    def load() -> HashEmbedder:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelIntegrityError("checksum mismatch")
        return model

    service = EmbeddingService(load)
    try:
        with pytest.raises(ModelIntegrityError):
            await service.embed(["x"])
        assert len(await service.embed(["x"])) == 1
        assert len(attempts) == 2 and service.stats.failures == 1
    finally:
        await service.aclose()


async def test_a_model_failure_reaches_every_caller_of_the_batch() -> None:
    model = HashEmbedder(fail_runs=1)
    service = EmbeddingService(lambda: model)
    try:
        results = await asyncio.gather(service.embed(["a"]), service.embed(["b"]),
                                       return_exceptions=True)
        assert all(isinstance(r, WardenError) and r.status == 500 for r in results)
        assert "onnxruntime exploded" in str(results[0])
        assert await service.embed(["a"]) == await service.embed(["a"])  # the next run works
        assert service.stats.failures == 1
    finally:
        await service.aclose()


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    model = HashEmbedder(delay_s=0.1)
    service = EmbeddingService(lambda: model)
    try:
        quitter = asyncio.create_task(service.embed(["shared"]))
        stayer = asyncio.create_task(service.embed(["shared"]))
        await asyncio.sleep(0.02)
        quitter.cancel()
        assert len((await stayer)[0]) == 8
        assert quitter.cancelled()
    finally:
        await service.aclose()


async def test_closing_fails_waiting_callers_and_refuses_new_ones() -> None:
    model = HashEmbedder(delay_s=0.1)
    service = EmbeddingService(lambda: model, max_batch=1)
    running = asyncio.create_task(service.embed(["first"]))
    waiting = asyncio.create_task(service.embed(["second"]))
    await asyncio.sleep(0.03)
    await service.aclose()
    for task in (running, waiting):
        with pytest.raises(Unavailable):
            await task
    with pytest.raises(Unavailable):
        await service.embed(["third"])


async def test_the_real_model_gives_the_same_vectors_batched_or_not() -> None:
    require_model()
    from warden.embeddings.minilm import MiniLM

    model = MiniLM()
    runs: list[int] = []

    class Counting:
        dim = model.dim

        def embed_counted(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[int]]:
            runs.append(len(texts))
            return model.embed_counted(texts)

    service = EmbeddingService(Counting, max_batch=32)
    texts = ["What is the capital of France?", "Natural language processing with transformers",
             "Stocks rallied after the earnings report.", "A recipe for lemon pie", "ok"] * 2
    try:
        batched = await asyncio.gather(*(service.embed([t]) for t in texts))
        assert runs == [5]  # ten callers, five distinct texts, one model run
        for text, got in zip(texts, batched, strict=True):
            np.testing.assert_allclose(got[0], model.embed([text])[0], atol=1e-6)
        assert service.stats.cache_misses == 10 and service.stats.texts == 5
    finally:
        await service.aclose()
