"""Keys kept in the store, managed through /api/keys: shown once, working at once, refused at
once after a revocation, and on another replica within seconds."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GatewayThread

ADMIN = "keys-admin-key"
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


def config_for(folder: Path) -> dict[str, Any]:
    return {"admin_key": ADMIN, "server": {"data_dir": str(folder)},
            "models": [{"name": n, "deployments": [{"id": "f", "provider": "fake"}]}
                       for n in ("echo", "other")]}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayThread]:
    with GatewayThread(config_for(tmp_path)) as g:
        yield g


def call(gw: GatewayThread, method: str, path: str, token: str | None,
         body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    sent = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(gw.url + path, method=method, headers=sent, data=data)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time limit"
        time.sleep(0.05)


def test_a_created_key_works_at_once_and_stops_at_once_when_revoked(gw: GatewayThread) -> None:
    status, made = call(gw, "POST", "/api/keys", ADMIN, {"name": "search", "models": ["echo"]})
    assert status == 201
    token, key_id = made["token"], made["id"]
    assert made["role"] == "app" and made["models"] == ["echo"] and made["revoked_at"] is None
    assert call(gw, "POST", "/v1/chat/completions", token, CHAT)[0] == 200
    status, answer = call(gw, "POST", "/v1/chat/completions", token, {**CHAT, "model": "other"})
    assert status == 403 and answer["error"]["code"] == "model_not_allowed"
    assert key_id in answer["error"]["message"]

    status, revoked = call(gw, "DELETE", f"/api/keys/{key_id}", ADMIN)
    assert status == 200 and revoked["revoked_at"] is not None and "token" not in revoked
    status, answer = call(gw, "POST", "/v1/chat/completions", token, CHAT)
    assert status == 401
    assert answer["error"]["code"] == "api_key_revoked" and key_id in answer["error"]["message"]


def test_the_token_is_shown_only_at_creation(gw: GatewayThread) -> None:
    _, made = call(gw, "POST", "/api/keys", ADMIN, {"name": "bot", "role": "viewer"})
    status, listed = call(gw, "GET", "/api/keys", ADMIN)
    assert status == 200
    text = json.dumps(listed)
    assert made["token"] not in text and made["token"].split("-")[-1] not in text
    assert "token" not in text and "sha256" not in text
    (entry,) = listed["data"]
    assert {k: v for k, v in made.items() if k != "token"} == entry


def test_records_get_the_stored_keys_id_team_tags_and_payload_policy(gw: GatewayThread) -> None:
    _, made = call(gw, "POST", "/api/keys", ADMIN, {
        "name": "private-app", "team": "search", "tags": {"cost_center": "cc-7"},
        "payloads": "none"})
    assert call(gw, "POST", "/v1/chat/completions", made["token"], CHAT,
                headers={"x-request-id": "req-private"})[0] == 200
    eventually(lambda: call(gw, "GET", "/api/requests/req-private", ADMIN)[0] == 200)
    detail = call(gw, "GET", "/api/requests/req-private", ADMIN)[1]
    record = detail["record"]
    assert (record["key_id"], record["team"]) == (made["id"], "search")
    assert record["tags"] == {"cost_center": "cc-7"}
    assert detail["payload"] is None  # the key's policy, not the store's default (full)
    assert call(gw, "GET", f"/api/requests?key={made['id']}", ADMIN)[1]["data"][0][
        "client_request_id"] == "req-private"


def test_stored_keys_have_their_roles_and_teams(gw: GatewayThread) -> None:
    _, viewer = call(gw, "POST", "/api/keys", ADMIN, {"name": "dash", "role": "viewer",
                                                     "team": "search"})
    assert call(gw, "GET", "/api/requests", viewer["token"])[0] == 200
    assert call(gw, "GET", "/api/requests?team=ads", viewer["token"])[0] == 403
    assert call(gw, "POST", "/api/keys", viewer["token"], {"name": "x"})[0] == 403
    assert call(gw, "POST", "/v1/chat/completions", viewer["token"], CHAT)[0] == 403
    _, admin = call(gw, "POST", "/api/keys", ADMIN, {"name": "second-admin", "role": "admin"})
    assert call(gw, "GET", "/api/keys", admin["token"])[0] == 200


def test_the_first_stored_key_closes_an_open_gateway_for_good(gw: GatewayThread) -> None:
    assert call(gw, "POST", "/v1/chat/completions", None, CHAT)[0] == 200  # no keys: open
    _, made = call(gw, "POST", "/api/keys", ADMIN, {"name": "first"})
    assert call(gw, "POST", "/v1/chat/completions", None, CHAT)[0] == 401
    call(gw, "DELETE", f"/api/keys/{made['id']}", ADMIN)
    assert call(gw, "POST", "/v1/chat/completions", None, CHAT)[0] == 401


@pytest.mark.parametrize(("body", "param"), [
    ({"name": "x", "role": "root"}, "role"),
    ({"name": "x", "payloads": "some"}, "payloads"),
    ({"name": "x", "scopes": ["all"]}, "scopes"),
    ({"role": "app"}, "name"),
    (b"{not json", None),
    ({"name": "bot\nadmin"}, "name"),
    ({"name": "../../etc"}, "name"),
    ({"name": "a/b"}, "name"),
    ({"name": "x" * 100_000}, "name"),
    ({"name": "x", "team": "ads\r\nops"}, "team"),
])
def test_a_bad_key_request_is_a_400_that_names_the_field(gw: GatewayThread, body: Any,
                                                          param: str | None) -> None:
    status, answer = call(gw, "POST", "/api/keys", ADMIN, body)
    assert status == 400 and answer["error"]["param"] == param
    assert call(gw, "GET", "/api/keys", ADMIN)[1]["data"] == []


def test_revoking_an_unknown_key_is_a_404(gw: GatewayThread) -> None:
    status, answer = call(gw, "DELETE", "/api/keys/key_ffffffffffffffff", ADMIN)
    assert status == 404 and answer["error"]["code"] == "key_not_found"


def test_a_revocation_reaches_another_replica_within_seconds(tmp_path: Path) -> None:
    # Two gateways on one store, as two replicas behind a load balancer.
    store = {"url": f"sqlite:///{tmp_path}/shared.db"}
    with GatewayThread({**config_for(tmp_path / "a"), "store": store}) as a, \
            GatewayThread({**config_for(tmp_path / "b"), "store": store}) as b:
        _, made = call(a, "POST", "/api/keys", ADMIN, {"name": "everywhere"})
        token = made["token"]
        eventually(lambda: call(b, "POST", "/v1/chat/completions", token, CHAT)[0] == 200, 5)
        call(a, "DELETE", f"/api/keys/{made['id']}", ADMIN)
        assert call(a, "POST", "/v1/chat/completions", token, CHAT)[0] == 401
        started = time.monotonic()
        eventually(lambda: call(b, "POST", "/v1/chat/completions", token, CHAT)[0] == 401, 5)
        assert time.monotonic() - started < 5
