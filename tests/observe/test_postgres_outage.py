"""PostgreSQL crashes and comes back during a load: every client request is answered, and
afterwards every record is in PostgreSQL exactly once (the recorder spooled what the server could
not take, and replayed the spool when the server returned). The server is a private one, started
by the test, so that killing it disturbs nothing else."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import GatewayThread, stored_ids
from tests.load import run_load
from tests.observe.pgserver import PostgresServer
from warden.config import parse_config
from warden.store.sql import engine_url

N = 6000
OUTAGE_S = 3.0


def scrape(url: str, name: str) -> float:
    """The value of one unlabelled metric on the gateway's /metrics."""
    with urllib.request.urlopen(url + "/metrics") as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"/metrics has no {name}")


@pytest.mark.slow
def test_a_crashed_postgres_loses_no_record_and_fails_no_request(
        postgres_server: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="warden.recorder")
    config = parse_config({"server": {"data_dir": str(tmp_path / "data")},
                           "store": {"url": postgres_server.url},
                           "models": [{"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]},
                          env={})
    with GatewayThread(config) as gw:
        recorder = gw.app.state.keeper.recorder
        times: dict[str, float] = {}
        during: dict[str, float] = {}

        stopped = asyncio.Event()

        async def crash() -> None:
            await asyncio.to_thread(postgres_server.stop, "immediate")
            times["stopped"] = time.monotonic()
            stopped.set()

        async def restart() -> None:
            await stopped.wait()
            await asyncio.sleep(max(0.0, times["stopped"] + OUTAGE_S - time.monotonic()))
            # What an operator sees during the outage: records waiting in the spool.
            during["spooled"] = await asyncio.to_thread(
                scrape, gw.url, "warden_recorder_spooled_records")
            during["store_errors"] = recorder.stats().store_errors
            await asyncio.to_thread(postgres_server.start)
            times["started"] = time.monotonic()

        result = asyncio.run(run_load(gw.url, N, 16, at={500: crash, 4000: restart},
                                      id_prefix="pg-outage-"))
        assert result.failures == []
        assert result.ok == N

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = recorder.stats()
            if stats.written >= N and stats.spooled == 0 and stats.queue_depth == 0:
                break
            time.sleep(0.05)
        final = recorder.stats()
        assert final.written >= N and final.spooled == 0, final  # replayed within the deadline
        store_errors = scrape(gw.url, "warden_recorder_store_errors_total")
    assert times["started"] - times["stopped"] >= OUTAGE_S

    ids = stored_ids(postgres_server.url)
    assert len(ids) == len(set(ids)) == N  # none twice
    engine = sa.create_engine(engine_url(postgres_server.url))
    try:
        with engine.connect() as conn:
            sent = conn.execute(sa.text("SELECT client_request_id FROM requests")).scalars().all()
    finally:
        engine.dispose()
    assert set(sent) == {f"pg-outage-{i}" for i in range(N)}  # none lost
    assert sorted(stored_ids(postgres_server.url, "payloads")) == sorted(ids)

    # The outage shows: in the spool gauge while it lasted, in the counters and the logs after.
    assert during["spooled"] > 0 and during["store_errors"] > 0 and store_errors > 0
    assert final.dropped == 0 and final.rejected == 0 and final.corrupt == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "warden.recorder"]
    assert any(m.startswith("the store failed") for m in logged), logged
    assert any(m.startswith("the store works again") for m in logged), logged
