"""The admin API: what ``/api/config`` shows, and reloads that are refused (an emptied file, a
hostile file) while the running config keeps serving."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import GatewayThread

ADMIN = "admin-key-for-reloads"
CONFIG: dict[str, Any] = {
    "admin_key": ADMIN,
    "keys": [{"key": "sk-client-000001", "name": "app"}],
    "tracing": {"headers": {"authorization": "Bearer otlp-token-123"}},
    "models": [
        {"name": "m", "deployments": [{"id": "f", "provider": "fake"}]},
        {"name": "up", "deployments": [
            {"id": "o", "provider": "openai",
             "base_url": "http://user:base-url-pw@127.0.0.1:9/v1",
             "headers": {"x-token": "header-token-456"},
             "params": {"organization": "org-secret-789"}},
            {"id": "k", "provider": "openai", "api_key": "sk-upstream-999",
             "base_url": "http://127.0.0.1:9/v1"}]},
    ],
}


def call(gw: GatewayThread, method: str, path: str, key: str = ADMIN,
         timeout: float = 10) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(gw.url + path, method=method,
                                 headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(json.loads(exc.read()))


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayThread]:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    with GatewayThread(CONFIG, config_path=path) as g:
        g.config_path = path  # type: ignore[attr-defined]
        yield g


def test_the_config_shows_no_credential_of_any_kind(gw: GatewayThread) -> None:
    status, body = call(gw, "GET", "/api/config")
    assert status == 200
    text = json.dumps(body)
    for secret in ("otlp-token-123", "sk-upstream-999", "base-url-pw", "header-token-456",
                   "org-secret-789", "sk-client-000001", ADMIN):
        assert secret not in text
    dep = body["models"][1]["deployments"][0]
    assert dep["base_url"] == "http://***@127.0.0.1:9/v1"
    assert dep["headers"] == {"x-token": "***"}
    assert body["tracing"]["headers"] == {"authorization": "***"}


def test_an_emptied_file_is_refused_and_the_models_keep_serving(gw: GatewayThread) -> None:
    path: Path = gw.config_path  # type: ignore[attr-defined]
    path.write_text("")  # a truncated write
    status, body = call(gw, "POST", "/api/admin/reload")
    assert status == 400
    assert body["error"]["code"] == "reload_empties_config"
    assert "every model" in body["error"]["message"]
    assert "every client key" in body["error"]["message"]
    assert "force=true" in body["error"]["message"]
    assert call(gw, "GET", "/readyz")[0] == 200
    assert call(gw, "GET", "/v1/models", key="sk-client-000001")[0] == 200


def test_a_file_without_keys_is_refused_unless_forced(gw: GatewayThread) -> None:
    path: Path = gw.config_path  # type: ignore[attr-defined]
    path.write_text(yaml.safe_dump({**CONFIG, "keys": []}))
    status, body = call(gw, "POST", "/api/admin/reload")
    assert status == 400 and "every client key" in body["error"]["message"]
    assert "every model" not in body["error"]["message"]
    status, body = call(gw, "POST", "/api/admin/reload?force=true")
    assert status == 200 and body["status"] == "reloaded"


def test_a_forced_reload_may_empty_the_config(gw: GatewayThread) -> None:
    path: Path = gw.config_path  # type: ignore[attr-defined]
    path.write_text(yaml.safe_dump({"admin_key": ADMIN}))
    assert call(gw, "POST", "/api/admin/reload")[0] == 400
    assert call(gw, "POST", "/api/admin/reload?force=true")[0] == 200
    assert call(gw, "GET", "/readyz")[0] == 503


def test_a_recursive_file_is_a_clear_400_not_a_500(gw: GatewayThread) -> None:
    path: Path = gw.config_path  # type: ignore[attr-defined]
    path.write_text("models: &a [*a]\n")
    status, body = call(gw, "POST", "/api/admin/reload")
    assert status == 400 and body["error"]["code"] == "invalid_config"
    assert "refers to its own anchor" in body["error"]["message"]


def test_an_alias_bomb_is_refused_quickly(gw: GatewayThread) -> None:
    path: Path = gw.config_path  # type: ignore[attr-defined]
    lines = ['a0: &a0 ["lol"]'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]"
                                   for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    status, body = call(gw, "POST", "/api/admin/reload")
    assert time.monotonic() - start < 3
    assert status == 400 and "expand to more than" in body["error"]["message"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_place_of_the_file_neither_hangs_the_reload_nor_the_gateway(
        gw: GatewayThread) -> None:
    path: Path = gw.config_path  # type: ignore[attr-defined]
    path.unlink()
    os.mkfifo(path)
    status, body = call(gw, "POST", "/api/admin/reload", timeout=5)
    assert status == 400 and "not a regular file" in body["error"]["message"]
    assert call(gw, "GET", "/healthz", timeout=5)[0] == 200
