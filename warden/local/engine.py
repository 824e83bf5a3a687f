"""``LlamaEngine``: one llama.cpp model loaded in-process (xllamacpp), served to asyncio.

xllamacpp's calls release the GIL and block their thread until the request is done; the
streaming callback runs on that same thread once per chunk. The engine therefore runs each
streamed request in a worker thread, forwards chunks to the event loop with
``call_soon_threadsafe``, and cancels generation by answering the callback with True.

A whole (non-streamed) answer has no callback to answer: xllamacpp's in-process call cannot be
stopped and would decode to ``max_tokens`` after its client left. It goes instead to llama.cpp's
own HTTP listener on the engine's private unix socket (same handlers, same JSON); cancelling the
awaiting task closes that connection, and llama.cpp cancels the generation and frees the slot
when it next polls the connection (about once a second). Concurrent requests share the
model's ``n_parallel`` slots (continuous batching); at most that many are handed to the engine,
the rest wait in a bounded queue, and past the bound a request is refused with 503.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from warden.errors import InvalidRequest, Unavailable, UpstreamError, WardenError
from warden.local.stats import EngineStats

_END = object()


@dataclass(frozen=True, slots=True)
class EngineSettings:
    path: Path
    n_parallel: int
    ctx_per_slot: int
    threads: int
    max_queue: int


def _engine_error(error: Any, where: str) -> WardenError:
    if not isinstance(error, dict):
        return UpstreamError(f"{where}: {error}")
    message = str(error.get("message") or error)
    if error.get("code") in (400, 404, 501) or error.get("type") == "exceed_context_size_error":
        return InvalidRequest(f"{where}: {message}", code=str(error.get("type") or "invalid_request"))
    return UpstreamError(f"{where}: {message}", code="local_engine_error")


class LlamaEngine:
    """An in-process llama.cpp server with an asyncio face."""

    def __init__(self, settings: EngineSettings, where: str) -> None:
        self.settings = settings
        self.where = where
        self.stats = EngineStats()
        self._server: Any = None
        self._slots = asyncio.Semaphore(settings.n_parallel)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.n_parallel + 2, thread_name_prefix="warden-llama")
        self._stops: set[threading.Event] = set()
        self._socket_dir = tempfile.TemporaryDirectory(prefix="warden-llama-")
        self._side_key = secrets.token_hex(16)
        self._side: aiohttp.ClientSession | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    async def load(self) -> None:
        """Load the model (in a thread) and warm it up."""
        loop = asyncio.get_running_loop()
        self._server = await loop.run_in_executor(self._pool, self._make_server)
        # The first long prompt after load is slow and a burst queues behind it; one ~64-token
        # warm-up removes that (a tiny one does not).
        await loop.run_in_executor(self._pool, lambda: self._server.handle_completions(
            {"prompt": "hello " * 64, "max_tokens": 1, "cache_prompt": False}))

    def _make_server(self) -> Any:
        import xllamacpp as xlc  # imported here: the package is an optional extra

        s = self.settings
        p = xlc.CommonParams()
        p.model.path = str(s.path)
        p.n_parallel = s.n_parallel
        p.n_ctx = s.ctx_per_slot * s.n_parallel
        p.cpuparams.n_threads = s.threads
        p.cpuparams_batch.n_threads = s.threads
        p.cont_batching = True
        p.endpoint_metrics = True
        p.verbosity = -1
        # llama.cpp always starts its own HTTP listener beside the in-process API; keep it on a
        # private unix socket with a random key (only the slot scrape below uses it).
        p.hostnames = [os.path.join(self._socket_dir.name, "llama.sock")]
        p.api_keys = [self._side_key]
        try:
            return xlc.Server(p)
        except (RuntimeError, ValueError) as exc:
            raise UpstreamError(f"{self.where}: cannot load {s.path}: {exc}",
                                code="local_model_load_failed") from exc

    async def aclose(self) -> None:
        """Cancel streams, wait for workers, then free the model."""
        self._closed = True
        for stop in list(self._stops):
            stop.set()
        if self._side is not None:
            await self._side.close()  # closes the connections of whole answers: they stop
            self._side = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self._pool.shutdown(wait=True))
        server, self._server = self._server, None
        del server  # the last reference: llama.cpp stops its threads here
        self._socket_dir.cleanup()

    # -- admission ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._closed or self._server is None:
            raise Unavailable(f"{self.where}: the local model is not loaded", retry_after=1)
        st = self.stats
        if self._slots.locked() and st.waiting >= self.settings.max_queue:
            st.rejected += 1
            raise Unavailable(
                f"{self.where}: the local model's queue is full ({st.waiting} waiting); retry "
                "shortly, or raise n_parallel / max_queue.", code="local_queue_full",
                retry_after=1)
        st.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            st.waiting -= 1
        st.running += 1
        try:
            yield
        finally:
            st.running -= 1
            self._slots.release()

    def _account(self, usage: Any, started: float) -> None:
        if isinstance(usage, dict):
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.generation_tokens += int(usage.get("completion_tokens") or 0)
        self.stats.e2e.observe(time.perf_counter() - started)

    # -- requests ----------------------------------------------------------------------------

    def _fn(self, kind: str) -> Callable[..., Any]:
        server = self._server
        if kind == "chat":
            return server.handle_chat_completions  # type: ignore[no-any-return]
        return server.handle_completions  # type: ignore[no-any-return]

    @property
    def _socket(self) -> str:
        return os.path.join(self._socket_dir.name, "llama.sock")

    def _session(self) -> aiohttp.ClientSession:
        if self._side is None:
            self._side = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self._socket),
                headers={"Authorization": f"Bearer {self._side_key}"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        return self._side

    async def complete(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
        async with self._slot():
            try:
                async with self._session().post(f"http://llama{path}",
                                                json={**body, "stream": False}) as resp:
                    raw = await resp.read()
            except aiohttp.ClientError as exc:
                self.stats.errors += 1
                raise UpstreamError(f"{self.where}: {exc}", code="local_engine_error") from None
        try:
            result = orjson.loads(raw)
        except orjson.JSONDecodeError:
            result = raw.decode(errors="replace")[:500]
        if not isinstance(result, dict) or "error" in result:
            self.stats.errors += 1
            raise _engine_error(result.get("error") if isinstance(result, dict) else result,
                                self.where)
        self.stats.success += 1
        self.stats.ttft.observe(time.perf_counter() - started)
        self._account(result.get("usage"), started)
        return result

    async def stream(self, kind: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        started = time.perf_counter()
        async with self._slot():
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            stop = threading.Event()
            fn = self._fn(kind)
            request = {**body, "stream": True,
                       "stream_options": {**(body.get("stream_options") or {}),
                                          "include_usage": True}}

            def on_chunk(chunk: Any) -> bool:  # a worker thread
                if stop.is_set():
                    return True  # the client went away: llama.cpp frees the slot
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
                return False

            def run() -> None:  # a worker thread
                try:
                    fn(request, on_chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the event loop as is
                    loop.call_soon_threadsafe(queue.put_nowait, exc)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, _END)

            self._stops.add(stop)
            done = loop.run_in_executor(self._pool, run)
            last = 0.0
            usage: Any = None
            try:
                while True:
                    item = await queue.get()
                    if item is _END:
                        break
                    if isinstance(item, ValueError):
                        raise InvalidRequest(f"{self.where}: {item}")
                    if isinstance(item, BaseException):
                        raise UpstreamError(f"{self.where}: {item}", code="local_engine_error")
                    if "error" in item:
                        raise _engine_error(item["error"], self.where)
                    now = time.perf_counter()
                    if last:
                        self.stats.itl.observe(now - last)
                    else:
                        self.stats.ttft.observe(now - started)
                    last = now
                    usage = item.get("usage") or usage
                    yield item
                self.stats.success += 1
                self._account(usage, started)
            except WardenError:
                self.stats.errors += 1
                raise
            finally:
                stop.set()
                self._stops.discard(stop)
                # Hold the slot until the worker has really let go of llama.cpp's slot.
                await asyncio.shield(done)

    # -- scrape ------------------------------------------------------------------------------

    async def refresh_kv_usage(self) -> None:
        """Update the KV-cache use from llama.cpp's slot table (scrape time only)."""
        if self._server is None:
            return
        try:
            async with self._session().get("http://llama/slots",
                                           timeout=aiohttp.ClientTimeout(total=2)) as resp:
                slots = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return  # the gauge keeps its last value; a scrape must not fail on it
        used = total = 0
        for slot in slots if isinstance(slots, list) else []:
            total += int(slot.get("n_ctx") or 0)
            if slot.get("is_processing"):
                tokens = slot.get("next_token") or [{}]
                first = tokens[0] if isinstance(tokens, list) and tokens else {}
                used += int(slot.get("n_prompt_tokens") or 0) + int(first.get("n_decoded") or 0)
        self.stats.kv_cache_usage = used / total if total else 0.0
