"""The record keeper: turns every finished request into a Record, hands it to the recorder,
and sweeps old records out of the store. One per gateway process (it outlives reloads)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from warden.config import Config
from warden.errors import WardenError
from warden.observe.build import payload_of, record_of
from warden.observe.record import Record
from warden.observe.recorder import Recorder
from warden.observe.tracing import SpanShipper
from warden.pipeline.context import RequestContext
from warden.store import open_store
from warden.store.base import Store

log = logging.getLogger("warden.keeper")
SWEEP_INTERVAL_S = 3600.0


def store_url(config: Config) -> str:
    if config.store.url:
        return config.store.url
    return f"sqlite:///{Path(config.server.data_dir).resolve() / 'warden.db'}"


class RecordKeeper:
    def __init__(self, config: Config, store: Store, recorder: Recorder,
                 tracer: SpanShipper | None = None) -> None:
        self.config = config
        self.store = store
        self.recorder = recorder
        self.tracer = tracer
        self.observers: list[Callable[[Record], None]] = []
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, config: Config) -> RecordKeeper:
        """Open the configured store (running its migrations) and a recorder in front of it."""
        store = open_store(store_url(config), cache_mib=config.store.cache_mib)
        spool = Path(config.server.data_dir).resolve() / "spool.jsonl"
        spool.parent.mkdir(parents=True, exist_ok=True)
        return cls(config, store, Recorder(store, spool, queue_size=config.store.queue_size),
                   SpanShipper.from_settings(config.tracing))

    def finish(self, ctx: RequestContext, http_status: int, error: WardenError | None) -> None:
        """Record a finished request; O(1) on the request path, never raises."""
        try:
            record = record_of(ctx, http_status, error)
            record.region = self.config.server.region or None
            policy = ctx.key.payloads if ctx.key is not None else None
            try:
                payload = payload_of(ctx, policy or self.config.store.payloads)
            except Exception:  # a body that cannot be written again: the record still counts
                log.exception("could not build the payload of request %s", ctx.request_id)
                payload = None
            for observe in self.observers:
                observe(record)
            if self.tracer is not None:
                self.tracer.submit(record, ctx)
        except Exception:  # a record that cannot be built must not fail the request
            log.exception("could not build or observe the record of request %s", ctx.request_id)
            return
        self.recorder.submit(record, payload)

    async def start(self) -> None:
        self.recorder.start()
        if self.tracer is not None:
            self.tracer.start()
        if self.config.store.retention_days:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await asyncio.to_thread(self.recorder.close, 10.0)
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.close, 10.0)
        await asyncio.to_thread(self.store.close)

    async def sweep(self) -> int:
        days = self.config.store.retention_days
        if not days:
            return 0
        before = time.time() - days * 86400
        removed = await asyncio.to_thread(self.store.purge, before)
        if removed:
            log.info("retention: removed %d record(s) older than %.0f day(s)", removed, days)
        return removed

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except WardenError as exc:
                log.warning("retention sweep failed, will retry: %s", exc.message)
            await asyncio.sleep(SWEEP_INTERVAL_S)
