"""A deployment killed during a load: retries cover it, the breaker opens, then closes."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import GatewayThread
from tests.load import run_load
from tests.routing.test_resilience import ADMIN, deployments
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream


@pytest.mark.slow
def test_killing_one_of_two_deployments_fails_no_client_request() -> None:
    a, b = FakeOpenAIUpstream(record=False), FakeOpenAIUpstream(record=False)
    with ServerThread(a.http) as a_thread, ServerThread(b.http):
        config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {
            "strategy": "round-robin", "retries": 2, "backoff_s": 0.01,
            "breaker": {"failures": 3, "cooldown_s": 0.5}},
            "deployments": [{"id": "a", "provider": "openai", "base_url": a.base_url},
                            {"id": "b", "provider": "openai", "base_url": b.base_url}]}]}
        with GatewayThread(config) as gw:
            async def kill() -> None:
                await asyncio.to_thread(a_thread.kill)

            async def revive() -> None:
                await asyncio.to_thread(a_thread.restart)

            result = asyncio.run(run_load(gw.url, 1500, 16, at={400: kill, 1100: revive}))
            assert result.failures == []
            assert result.ok == 1500
            state = deployments(gw)["m/a"]
            assert state["breaker_opened"] >= 1
            assert result.deployments["b"] > result.deployments.get("a", 0)

            # After the cooldown a probe reaches the revived deployment and closes the breaker.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                asyncio.run(run_load(gw.url, 20, 2))
                if deployments(gw)["m/a"]["breaker"] == "closed":
                    break
                time.sleep(0.2)
            assert deployments(gw)["m/a"]["breaker"] == "closed"
            before = a.seen.requests
            asyncio.run(run_load(gw.url, 20, 2))
            assert a.seen.requests > before
