"""Who may read /metrics: a key that may read by default, anyone when configured public, and
the series that name keys and teams only for a key that reads every team (or when allowed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import GatewayThread

ADMIN = "metrics-admin-key"
VIEWER = "metrics-viewer-01"
TEAM_VIEWER = "metrics-viewer-red"
APP = "metrics-app-key-01"


def config(**metrics: Any) -> dict[str, Any]:
    return {
        "admin_key": ADMIN,
        "server": {"metrics": metrics},
        "keys": [{"key": APP, "name": "carol", "role": "app"},
                 {"key": VIEWER, "name": "watcher", "role": "viewer"},
                 {"key": TEAM_VIEWER, "name": "red-watcher", "role": "viewer", "team": "red"}],
        "budgets": [{"scope": "key", "match": "carol", "usd": 5}],
        "models": [{"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}],
    }


def get(gw: GatewayThread, path: str, key: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(gw.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def spend(gw: GatewayThread) -> None:
    """One request under carol's budget, so that the budget series exist."""
    data = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(gw.url + "/v1/chat/completions", data=data, method="POST",
                                 headers={"Authorization": f"Bearer {APP}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayThread]:
    with GatewayThread(config()) as g:
        spend(g)
        yield g


def test_metrics_need_a_key_that_may_read(gw: GatewayThread) -> None:
    assert get(gw, "/metrics")[0] == 401
    assert get(gw, "/metrics", "not-a-key-at-all")[0] == 401
    status, body = get(gw, "/metrics", APP)
    assert status == 403 and "permission_error" in body


def test_key_and_team_names_only_for_a_key_that_reads_every_team(gw: GatewayThread) -> None:
    for key in (ADMIN, VIEWER):
        status, body = get(gw, "/metrics", key)
        assert status == 200
        assert 'subject="carol"' in body and "warden_requests" in body
    status, body = get(gw, "/metrics", TEAM_VIEWER)
    assert status == 200
    assert "carol" not in body and "warden_requests" in body


def test_public_metrics_leave_out_key_and_team_names_unless_allowed() -> None:
    with GatewayThread(config(access="public")) as g:
        spend(g)
        status, body = get(g, "/metrics")
        assert status == 200 and "warden_requests" in body and "carol" not in body
    with GatewayThread(config(access="public", subjects=True)) as g:
        spend(g)
        assert 'subject="carol"' in get(g, "/metrics")[1]


def test_metrics_on_their_own_port_are_not_on_the_main_one() -> None:
    with GatewayThread(config(port=9)) as g:
        status, body = get(g, "/metrics", ADMIN)
        assert status == 404 and "server.metrics.port" in body


def test_a_gateway_without_any_key_serves_metrics_like_its_open_v1() -> None:
    open_config = {"models": [{"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]}
    with GatewayThread(open_config) as g:
        assert get(g, "/metrics")[0] == 200
