"""What each role may reach, endpoint by endpoint, and team isolation of the records, through
real HTTP: admin (everything), operator (read, reload, feedback), viewer (read), app (/v1)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.helpers import GatewayThread

ADMIN = "roles-admin-key"
TOKENS = {
    "admin": ADMIN,
    "operator": "sk-operator-0001",
    "viewer": "sk-viewer-00001",
    "app": "sk-app-a-00001",
}
APP_B = "sk-app-b-00001"
VIEWER_A = "sk-viewer-a-001"
OPERATOR_A = "sk-operator-a-1"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    folder = tmp_path_factory.mktemp("roles")
    config = {
        "admin_key": ADMIN,
        "server": {"data_dir": str(folder / "data")},
        "keys": [
            {"key": TOKENS["operator"], "name": "ops", "role": "operator"},
            {"key": TOKENS["viewer"], "name": "watcher", "role": "viewer"},
            {"key": TOKENS["app"], "name": "app-a", "team": "a", "tags": {"cost_center": "cc-a"}},
            {"key": APP_B, "name": "app-b", "role": "app", "team": "b"},
            {"key": VIEWER_A, "name": "viewer-a", "role": "viewer", "team": "a"},
            {"key": OPERATOR_A, "name": "operator-a", "role": "operator", "team": "a"},
        ],
        "models": [{"name": "echo", "deployments": [{"id": "f", "provider": "fake"}]}],
    }
    path = folder / "warden.yaml"
    path.write_text(yaml.safe_dump(config))
    with GatewayThread(config, config_path=path) as g:
        for token, rid in ((TOKENS["app"], "req-a"), (APP_B, "req-b")):
            status, _ = call(g, "POST", "/v1/chat/completions", token, {
                "model": "echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-request-id": rid, "x-warden-tag-cost_center": "from-header"})
            assert status == 200
        deadline = time.monotonic() + 10
        while len(call(g, "GET", "/api/requests", ADMIN)[1]["data"]) < 2:
            assert time.monotonic() < deadline, "the records were not stored"
            time.sleep(0.05)
        yield g


def call(gw: GatewayThread, method: str, path: str, token: str | None,
         body: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    sent = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(gw.url + path, method=method, headers=sent,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
# (method, path, body) -> the status for admin, operator, viewer, app
MATRIX: list[tuple[str, str, dict[str, Any] | None, tuple[int, int, int, int]]] = [
    ("POST", "/v1/chat/completions", CHAT, (200, 403, 403, 200)),
    ("GET", "/v1/models", None, (200, 403, 403, 200)),
    ("GET", "/api/requests", None, (200, 200, 200, 403)),
    ("GET", "/api/requests/req-a", None, (200, 200, 200, 403)),
    ("GET", "/api/stats", None, (200, 200, 200, 403)),
    ("GET", "/api/resources", None, (200, 200, 200, 403)),
    ("GET", "/api/deployments", None, (200, 200, 200, 403)),
    ("GET", "/api/config", None, (200, 200, 200, 403)),
    ("POST", "/api/feedback", {"request_id": "req-a", "score": 1}, (201, 201, 403, 403)),
    ("POST", "/api/admin/reload", None, (200, 200, 403, 403)),
    ("GET", "/api/keys", None, (200, 403, 403, 403)),
    ("POST", "/api/keys", {"name": "made-in-a-test"}, (201, 403, 403, 403)),
    ("DELETE", "/api/keys/key_0000000000000000", None, (404, 403, 403, 403)),
]
ROLES = ("admin", "operator", "viewer", "app")


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_each_role_reaches_exactly_its_endpoints(gw: GatewayThread, method: str, path: str,
                                                 body: dict[str, Any] | None,
                                                 expected: tuple[int, int, int, int]) -> None:
    got = {role: call(gw, method, path, TOKENS[role], body) for role in ROLES}
    assert {role: status for role, (status, _) in got.items()} == dict(zip(ROLES, expected,
                                                                          strict=True))
    for role, (status, answer) in got.items():
        if status == 403:
            error = answer["error"]
            assert error["type"] == "permission_error" and error["code"] == "role_not_allowed"
            assert f"has role {role}" in error["message"] and "use a key with role" in error["message"]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_no_key_or_an_unknown_key_is_401_everywhere(gw: GatewayThread, method: str, path: str,
                                                     body: dict[str, Any] | None,
                                                     expected: tuple[int, ...]) -> None:
    for token in (None, "sk-not-a-key-at-all"):
        status, answer = call(gw, method, path, token, body)
        assert status == 401, (token, answer)
        assert answer["error"]["type"] == "authentication_error"
        assert "Bearer" in answer["error"]["message"] or "ask an admin" in answer["error"]["message"]


def test_a_viewer_reads_but_changes_nothing(gw: GatewayThread) -> None:
    viewer = TOKENS["viewer"]
    assert call(gw, "GET", "/api/requests/req-a", viewer)[0] == 200
    before = call(gw, "GET", "/api/requests/req-b", ADMIN)[1]["feedback"]
    assert call(gw, "POST", "/api/feedback", viewer, {"request_id": "req-b", "score": 0})[0] == 403
    assert call(gw, "GET", "/api/requests/req-b", ADMIN)[1]["feedback"] == before
    generation = call(gw, "GET", "/api/deployments", viewer)[1]["generation"]
    assert call(gw, "POST", "/api/admin/reload", viewer)[0] == 403
    assert call(gw, "GET", "/api/deployments", viewer)[1]["generation"] == generation


def test_records_carry_the_key_id_team_and_tags(gw: GatewayThread) -> None:
    record = call(gw, "GET", "/api/requests/req-a", ADMIN)[1]["record"]
    assert (record["key_id"], record["team"]) == ("app-a", "a")
    assert record["tags"]["cost_center"] == "cc-a"  # the key's tag wins over the header's
    assert call(gw, "GET", "/api/requests/req-b", ADMIN)[1]["record"]["team"] == "b"


def _ids(answer: dict[str, Any]) -> set[str]:
    return {r["client_request_id"] for r in answer["data"]}  # the ids the clients sent


def test_a_team_key_lists_only_its_team_even_when_asking_for_another(gw: GatewayThread) -> None:
    assert {"req-a", "req-b"} <= _ids(call(gw, "GET", "/api/requests", ADMIN)[1])
    assert {"req-a", "req-b"} <= _ids(call(gw, "GET", "/api/requests", TOKENS["viewer"])[1])
    for token in (VIEWER_A, OPERATOR_A):
        mine = call(gw, "GET", "/api/requests", token)[1]
        assert "req-a" in _ids(mine) and "req-b" not in _ids(mine)
        assert {r["team"] for r in mine["data"]} == {"a"}
        status, answer = call(gw, "GET", "/api/requests?team=b", token)
        assert status == 403 and answer["error"]["code"] == "team_not_allowed"
        assert "team=a" in answer["error"]["message"]
        asked = call(gw, "GET", "/api/requests?team=a", token)[1]["data"]
        assert "req-a" in _ids({"data": asked}) and {r["team"] for r in asked} == {"a"}
        assert call(gw, "GET", "/api/requests?key=app-b", token)[1]["data"] == []


def test_another_teams_request_is_404_for_a_team_key(gw: GatewayThread) -> None:
    status, answer = call(gw, "GET", "/api/requests/req-b", VIEWER_A)
    assert status == 404 and answer["error"]["code"] == "request_not_found"
    assert call(gw, "GET", "/api/requests/req-a", VIEWER_A)[0] == 200
    assert call(gw, "GET", "/api/requests/req-b", ADMIN)[0] == 200


def test_a_team_key_gives_feedback_only_to_its_team(gw: GatewayThread) -> None:
    status, answer = call(gw, "POST", "/api/feedback", OPERATOR_A, {"request_id": "req-b",
                                                                    "label": "x"})
    assert status == 404 and answer["error"]["code"] == "request_not_found"
    assert call(gw, "POST", "/api/feedback", OPERATOR_A,
                {"request_id": "req-a", "label": "fine"})[0] == 201


def test_a_team_key_gets_statistics_of_its_team_only(gw: GatewayThread) -> None:
    def groups(token: str) -> dict[str, int]:
        rows = call(gw, "GET", "/api/stats?bucket=86400&group_by=team", token)[1]["data"]
        out: dict[str, int] = {}
        for row in rows:
            out[row["group"]] = out.get(row["group"], 0) + row["count"]
        return out

    assert {"a", "b"} <= set(groups(ADMIN))
    assert set(groups(VIEWER_A)) == {"a"}
    assert call(gw, "GET", "/api/stats?team=b", VIEWER_A)[0] == 403


def test_a_refused_request_is_recorded_with_the_key_that_sent_it(gw: GatewayThread) -> None:
    status, _ = call(gw, "POST", "/v1/chat/completions", VIEWER_A, CHAT,
                     headers={"x-request-id": "req-refused"})
    assert status == 403
    deadline = time.monotonic() + 10
    while (found := call(gw, "GET", "/api/requests/req-refused", ADMIN))[0] != 200:
        assert time.monotonic() < deadline, "the refusal was not recorded"
        time.sleep(0.05)
    record = found[1]["record"]
    assert (record["key_id"], record["team"], record["http_status"]) == ("viewer-a", "a", 403)
