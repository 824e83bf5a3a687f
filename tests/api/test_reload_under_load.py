"""The config changed 20 times during a load: every request answered, none failed."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import GatewayThread
from tests.load import run_load
from warden.config import load_config
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "reload-admin-key"


def variant(i: int, a: FakeOpenAIUpstream, b: FakeOpenAIUpstream) -> dict[str, Any]:
    """Twenty different configs: deployments swapped, weights, strategies, models added."""
    strategies = ["weighted", "round-robin", "least-latency", "least-in-flight"]
    deps = [{"id": f"a{i % 3}", "provider": "openai", "base_url": a.base_url,
             "weight": 1 + i % 4}]
    if i % 2:
        deps.append({"id": f"b{i % 5}", "provider": "openai", "base_url": b.base_url})
    if i % 5 == 4:
        deps = [{"id": "only-fake", "provider": "fake"}]
    models = [{"name": "m", "routing": {"strategy": strategies[i % 4], "retries": 1 + i % 2},
               "deployments": deps}]
    if i % 3 == 0:
        models.append({"name": f"extra-{i}", "deployments": [{"id": "x", "provider": "fake"}]})
    return {"admin_key": ADMIN, "models": models}


def post_reload(url: str) -> dict[str, Any]:
    req = urllib.request.Request(url + "/api/admin/reload", method="POST",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as resp:
        return dict(json.loads(resp.read()))


@pytest.mark.slow
def test_twenty_reloads_during_a_load_fail_no_request(tmp_path: Path) -> None:
    a, b = FakeOpenAIUpstream(record=False), FakeOpenAIUpstream(record=False)
    path = tmp_path / "warden.yaml"
    with ServerThread(a.http), ServerThread(b.http):
        path.write_text(yaml.safe_dump(variant(0, a, b)))
        with GatewayThread(load_config(path), config_path=path) as gw:
            reloads: list[dict[str, Any]] = []

            def make_reload(i: int) -> Any:
                async def reload() -> None:
                    path.write_text(yaml.safe_dump(variant(i, a, b)))
                    reloads.append(await asyncio.to_thread(post_reload, gw.url))
                return reload

            at = {60 * i: make_reload(i) for i in range(1, 21)}
            result = asyncio.run(run_load(gw.url, 1300, 16, at=at))
            assert result.failures == []
            assert result.ok == 1300
            assert [r["status"] for r in reloads] == ["reloaded"] * 20
            assert reloads[-1]["generation"] == 21
            assert {"a0", "a1", "a2", "only-fake"} <= set(result.deployments)


def test_an_invalid_config_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    good = {"admin_key": ADMIN, "models": [{"name": "m", "deployments": [
        {"id": "f", "provider": "fake"}]}]}
    path.write_text(yaml.safe_dump(good))
    with GatewayThread(load_config(path), config_path=path) as gw:
        path.write_text("models:\n  - name: m\n    deploymnets: []\n")
        with pytest.raises(urllib.error.HTTPError) as info:
            post_reload(gw.url)
        assert info.value.code == 400
        error = json.loads(info.value.read())["error"]
        info.value.close()
        assert "models[0].deploymnets" in error["message"]
        assert "did you mean 'deployments'" in error["message"]
        path.write_text(yaml.safe_dump({**good, "models": [{"name": "m", "deployments": [
            {"id": "f", "provider": "nope"}]}]}))
        with pytest.raises(urllib.error.HTTPError) as info:
            post_reload(gw.url)
        info.value.close()
        result = asyncio.run(run_load(gw.url, 10, 2))
        assert result.ok == 10


def test_reload_needs_the_admin_key(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump({"admin_key": ADMIN, "models": [
        {"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]}))
    with GatewayThread(load_config(path), config_path=path) as gw:
        req = urllib.request.Request(gw.url + "/api/admin/reload", method="POST",
                                     headers={"Authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == 401
        info.value.close()
