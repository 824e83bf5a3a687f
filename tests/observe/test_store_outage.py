"""The store is unavailable during a load: every client request is answered, and every record
is in the store afterwards (the recorder spooled them and replayed the spool)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import GatewayThread
from tests.load import run_load
from warden.config import parse_config


@pytest.mark.slow
def test_a_locked_sqlite_store_loses_no_record_and_fails_no_request(tmp_path: Path) -> None:
    config = parse_config({"server": {"data_dir": str(tmp_path)}, "models": [
        {"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]}, env={})
    db = tmp_path / "warden.db"
    with GatewayThread(config) as gw:
        keeper = gw.app.state.keeper
        lock = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            locked_at = 0.0

            async def take_lock() -> None:
                nonlocal locked_at
                lock.execute("BEGIN EXCLUSIVE")
                locked_at = time.monotonic()

            async def release_lock() -> None:
                # Hold the lock past SQLite's busy timeout (10 s), so that writes really fail.
                await asyncio.sleep(max(0.0, locked_at + 12 - time.monotonic()))
                lock.execute("COMMIT")

            result = asyncio.run(run_load(gw.url, 6000, 16,
                                          at={500: take_lock, 5000: release_lock}))
        finally:
            lock.close()
        assert result.failures == []
        assert result.ok == 6000
        stats = keeper.recorder.stats()
        assert stats.store_errors > 0  # the store really was unavailable
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stats = keeper.recorder.stats()
            if stats.written >= 6000 and stats.spooled == 0:
                break
            time.sleep(0.1)
    with sqlite3.connect(db) as check:
        (count,) = check.execute("SELECT count(*) FROM requests").fetchone()
        (distinct,) = check.execute("SELECT count(DISTINCT request_id) FROM requests").fetchone()
    check.close()
    assert count == distinct == 6000
    assert keeper.recorder.stats().dropped == 0
