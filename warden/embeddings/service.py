"""The embedding service: one model shared by every caller in the process, batched and cached.

Concurrent callers are micro-batched: texts that arrive within ``max_wait_s`` of the first one,
or while the model is busy, go into one model run of at most ``max_batch`` texts. Runs happen one
at a time on a dedicated thread, so the event loop never waits on the model. Vectors are kept in
an LRU cache keyed by text; a text already waiting or running is not embedded twice.

The service is an object owned by whoever creates it (a provider, a monitor); there is no
process-wide instance. The model is loaded on first use, on the service's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from warden.errors import Unavailable, WardenError

log = logging.getLogger("warden.embeddings")

_Row = tuple[NDArray[np.float32], int]  # one text's vector and token count


class Embedder(Protocol):
    """What the service needs of a model (``MiniLM`` is one)."""

    dim: int

    def embed_counted(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[int]]:
        """Vectors (len(texts), dim) and the tokens read of each text; blocking."""
        ...


@dataclass(slots=True)
class EmbeddingStats:
    """Counters since the service was created."""

    cache_hits: int = 0
    cache_misses: int = 0
    batches: int = 0       # model runs
    texts: int = 0         # texts embedded by the model (cache misses, less duplicates)
    failures: int = 0      # model runs (or loads) that raised


@dataclass(slots=True, frozen=True)
class Embeddings:
    """The answer to one ``embed_counted`` call, in the order of its texts."""

    vectors: NDArray[np.float32]   # (n, dim), unit vectors
    tokens: list[int]


class EmbeddingService:
    """Batches, caches and runs embedding requests on one model."""

    def __init__(self, load: Callable[[], Embedder], *, max_batch: int = 32,
                 max_wait_s: float = 0.002, cache_size: int = 4096) -> None:
        if max_batch < 1 or cache_size < 0 or max_wait_s < 0:
            raise ValueError("max_batch must be ≥ 1, cache_size and max_wait_s ≥ 0")
        self._load = load
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.cache_size = cache_size
        self.stats = EmbeddingStats()
        self._model: Embedder | None = None
        self._cache: OrderedDict[str, _Row] = OrderedDict()
        self._pending: dict[str, asyncio.Future[_Row]] = {}
        self._running: dict[str, asyncio.Future[_Row]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warden-embed")
        self._wakeup: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loading: asyncio.Task[Embedder] | None = None
        self._closed = False

    async def ready(self) -> None:
        """Load the model now (on the service's thread) instead of at the first request."""
        await self._model_or_load()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors of the texts, as lists of floats."""
        result: list[list[float]] = (await self.embed_counted(texts)).vectors.tolist()
        return result

    async def embed_counted(self, texts: Sequence[str]) -> Embeddings:
        """Unit vectors of the texts and the tokens the model read of each."""
        if self._closed:
            raise _closed()
        loop = asyncio.get_running_loop()
        rows: list[_Row | None] = [None] * len(texts)
        waits: dict[int, asyncio.Future[_Row]] = {}
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                self.stats.cache_hits += 1
                rows[i] = hit
                continue
            self.stats.cache_misses += 1
            fut = self._pending.get(text)
            if fut is None:
                fut = self._running.get(text)
            if fut is None:
                fut = loop.create_future()
                fut.add_done_callback(_retrieve)
                self._pending[text] = fut
            waits[i] = fut
        if waits:
            self._wake()
            for i, fut in waits.items():
                # Shielded: a cancelled caller must not cancel a text other callers wait for.
                rows[i] = await asyncio.shield(fut)
        dim = self._model.dim if self._model is not None else 0
        if not rows:
            return Embeddings(np.zeros((0, dim), dtype=np.float32), [])
        done = [r for r in rows if r is not None]
        return Embeddings(np.stack([r[0] for r in done]), [r[1] for r in done])

    def _wake(self) -> None:
        if self._worker is None:
            self._wakeup, self._full = asyncio.Event(), asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work())
        assert self._wakeup is not None and self._full is not None
        self._wakeup.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()

    async def _work(self) -> None:
        assert self._wakeup is not None and self._full is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            if not self._pending:
                self._wakeup.clear()
                continue
            deadline = loop.time() + self.max_wait_s
            while len(self._pending) < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(left):
                        await self._full.wait()
                except TimeoutError:
                    break
            texts = list(self._pending)[: self.max_batch]
            futures = [self._pending.pop(t) for t in texts]
            self._running.update(zip(texts, futures, strict=True))
            if len(self._pending) < self.max_batch:
                self._full.clear()
            if not self._pending:
                self._wakeup.clear()
            try:
                await self._run(texts, futures)
            finally:
                for text, fut in zip(texts, futures, strict=True):
                    del self._running[text]
                    if not fut.done():  # only when the worker is cancelled by aclose()
                        fut.set_exception(_closed())

    async def _run(self, texts: list[str], futures: list[asyncio.Future[_Row]]) -> None:
        try:
            model = await self._model_or_load()
            vectors, tokens = await asyncio.get_running_loop().run_in_executor(
                self._executor, model.embed_counted, texts)
        except WardenError as exc:
            self._fail(futures, exc)
        except Exception as exc:  # counted, logged and handed to every caller of the batch
            log.exception("embedding a batch of %d texts failed", len(texts))
            failure = WardenError(f"the embedding model failed: {exc}", code="embedding_failed")
            failure.__cause__ = exc
            self._fail(futures, failure)
        else:
            self.stats.batches += 1
            self.stats.texts += len(texts)
            for i, (text, fut) in enumerate(zip(texts, futures, strict=True)):
                row = (vectors[i].copy(), tokens[i])
                self._remember(text, row)
                if not fut.done():
                    fut.set_result(row)

    def _fail(self, futures: list[asyncio.Future[_Row]], exc: Exception) -> None:
        self.stats.failures += 1
        for fut in futures:
            if not fut.done():
                fut.set_exception(exc)

    def _remember(self, text: str, row: _Row) -> None:
        if self.cache_size == 0:
            return
        self._cache[text] = row
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _model_or_load(self) -> Embedder:
        if self._model is not None:
            return self._model
        task = self._loading
        if task is None:
            task = self._loading = asyncio.get_running_loop().create_task(self._load_in_thread())
        try:
            return await asyncio.shield(task)
        except BaseException:
            if task.done() and self._loading is task:
                self._loading = None  # a failed load is tried again by the next caller
            raise

    async def _load_in_thread(self) -> Embedder:
        model = await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        self._model = model
        return model

    async def aclose(self) -> None:
        """Stop the worker, fail the callers still waiting, and release the thread."""
        self._closed = True
        for task in (self._worker, self._loading):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._worker = self._loading = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(_closed())
        self._pending.clear()
        # A model run still on the thread finishes first; its result is dropped.
        await asyncio.to_thread(self._executor.shutdown, True)
        self._cache.clear()
        self._model = None


def _retrieve(fut: asyncio.Future[_Row]) -> None:
    # Marks an exception as seen when every caller of the text has gone (cancelled).
    if not fut.cancelled():
        fut.exception()


def _closed() -> Unavailable:
    return Unavailable("the embedding service is closed", code="embedding_service_closed")
