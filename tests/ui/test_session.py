"""Dashboard sessions through real HTTP: who may log in, what the cookie is and holds, that a
forged, tampered, expired or foreign cookie opens nothing, that a revoked or rotated key ends
its sessions at once, and that a change made with the cookie must come from the same origin."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import GatewayThread
from tests.ui.http import call, login
from warden.access.session import SessionSigner

ADMIN = "session-admin-key-1"
OPERATOR = "session-operator-01"
VIEWER = "session-viewer-0001"
APP = "session-app-key-001"
SECRET = "a-session-secret-for-tests-0123456789"


def config(folder: Path, admin: str = ADMIN, secret: str | None = SECRET) -> dict[str, Any]:
    return {
        "admin_key": admin,
        "server": {"data_dir": str(folder / "data")},
        "ui": {"session_secret": secret} if secret else {},
        "keys": [{"key": OPERATOR, "name": "oncall", "role": "operator"},
                 {"key": VIEWER, "name": "auditor", "role": "viewer", "team": "red"},
                 {"key": APP, "name": "web", "role": "app"}],
        "models": [{"name": "echo", "deployments": [{"id": "f", "provider": "fake"}]}],
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    folder = tmp_path_factory.mktemp("session")
    path = folder / "warden.yaml"
    path.write_text(yaml.safe_dump(config(folder)))
    with GatewayThread(config(folder), config_path=path) as g:
        yield g


def test_the_admin_key_gets_a_signed_http_only_cookie_without_the_key(gw: GatewayThread) -> None:
    answer = call(gw.url, "POST", "/ui/login", body={"key": ADMIN, "next": "/ui/costs"})
    assert answer.status == 200, answer.text
    assert answer.json() == {"next": "/ui/costs", "name": "admin", "role": "admin"}
    header = answer.cookie("warden_session")
    assert header is not None
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age", "expires"} <= set(attributes)
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/"
    assert attributes["max-age"] == "Max-Age=43200"  # 12 hours
    assert "secure" not in attributes  # plain HTTP here; Secure over HTTPS
    value = header.split(";", 1)[0].split("=", 1)[1]
    assert ADMIN not in value
    payload = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert set(payload) == {"sub", "fp", "exp"} and payload["sub"] == "admin"
    assert abs(payload["exp"] - (time.time() + 43200)) < 60
    assert call(gw.url, "GET", "/api/requests", cookie=value).status == 200


@pytest.mark.parametrize("key", [OPERATOR, VIEWER])
def test_operator_and_viewer_keys_log_in(gw: GatewayThread, key: str) -> None:
    cookie = login(gw.url, key)
    assert call(gw.url, "GET", "/api/stats", cookie=cookie).status == 200


def test_a_form_login_goes_to_the_page_asked_for(gw: GatewayThread) -> None:
    answer = call(gw.url, "POST", "/ui/login", form={"key": ADMIN, "next": "/ui/requests?model=x"})
    assert answer.status == 303
    assert answer.headers["location"] == "/ui/requests?model=x"
    assert answer.cookie("warden_session") is not None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/api/keys",
                                    "/ui/login", "/ui\\..\\x"])
def test_a_login_never_sends_the_browser_elsewhere(gw: GatewayThread, target: str) -> None:
    answer = call(gw.url, "POST", "/ui/login", form={"key": ADMIN, "next": target})
    assert answer.headers["location"] == "/ui/overview"


def test_a_wrong_key_is_refused_in_the_page_and_as_json(gw: GatewayThread) -> None:
    answer = call(gw.url, "POST", "/ui/login", body={"key": "not-a-key-of-this-gateway"})
    assert answer.status == 401
    assert "Invalid API key" in answer.json()["error"]["message"]
    assert answer.cookie("warden_session") is None
    page = call(gw.url, "POST", "/ui/login", form={"key": "not-a-key-of-this-gateway"})
    assert page.status == 401
    assert 'data-testid="login-error"' in page.text and "Invalid API key" in page.text
    empty = call(gw.url, "POST", "/ui/login", body={"key": "  "})
    assert empty.status == 400


def test_an_app_key_is_refused_with_a_clear_message(gw: GatewayThread) -> None:
    answer = call(gw.url, "POST", "/ui/login", body={"key": APP})
    assert answer.status == 403
    message = answer.json()["error"]["message"]
    assert "role app" in message and "admin, operator or viewer" in message
    assert answer.cookie("warden_session") is None


def _signed(subject: str, fp: str, expires_at: float, secret: str = SECRET) -> str:
    return SessionSigner(secret.encode()).issue(subject, fp, expires_at)


def _claims(cookie: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(cookie.split(".")[0] + "==")))


def test_a_tampered_forged_or_foreign_cookie_opens_nothing(gw: GatewayThread) -> None:
    viewer = login(gw.url, VIEWER)
    claims = _claims(viewer)
    payload, mac = viewer.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "admin"}).encode()).decode()
    cookies = {
        "tampered": f"{forged.rstrip('=')}.{mac}",
        "unsigned": payload,
        "garbage": "not-a-cookie",
        "other secret": _signed(claims["sub"], claims["fp"], time.time() + 600,
                                secret="another-secret-of-some-other-gateway"),
        "wrong token": _signed("admin", claims["fp"], time.time() + 600),
    }
    for what, cookie in cookies.items():
        answer = call(gw.url, "GET", "/api/requests", cookie=cookie)
        assert answer.status == 401, what
        page = call(gw.url, "GET", "/ui/requests", cookie=cookie)
        assert page.status == 303 and page.headers["location"].startswith("/ui/login?next="), what


def test_an_expired_cookie_is_refused(gw: GatewayThread) -> None:
    claims = _claims(login(gw.url, ADMIN))
    expired = _signed(claims["sub"], claims["fp"], time.time() - 1)
    answer = call(gw.url, "GET", "/api/requests", cookie=expired)
    assert answer.status == 401
    assert "log in again" in answer.json()["error"]["message"]
    fresh = _signed(claims["sub"], claims["fp"], time.time() + 60)
    assert call(gw.url, "GET", "/api/requests", cookie=fresh).status == 200


def test_a_revoked_stored_key_loses_its_session_at_once(gw: GatewayThread) -> None:
    made = call(gw.url, "POST", "/api/keys", token=ADMIN, body={"name": "temp", "role": "viewer"})
    assert made.status == 201, made.text
    cookie = login(gw.url, made.json()["token"])
    assert call(gw.url, "GET", "/api/requests", cookie=cookie).status == 200
    assert call(gw.url, "GET", "/ui/overview", cookie=cookie).status == 200
    assert call(gw.url, "DELETE", f"/api/keys/{made.json()['id']}", token=ADMIN).status == 200
    answer = call(gw.url, "GET", "/api/requests", cookie=cookie)
    assert answer.status == 401
    assert "revoked" in answer.json()["error"]["message"]
    assert call(gw.url, "GET", "/ui/overview", cookie=cookie).status == 303


def test_a_change_with_the_cookie_needs_the_same_origin(gw: GatewayThread) -> None:
    cookie = login(gw.url, ADMIN)
    host = gw.url.removeprefix("http://")
    body = {"name": "csrf-check", "role": "app"}
    refused = [
        {},
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"referer": "http://evil.example/ui/keys"},
        {"origin": f"http://{host}.evil.example"},
    ]
    for headers in refused:
        answer = call(gw.url, "POST", "/api/keys", cookie=cookie, body=body, headers=headers)
        assert answer.status == 403, headers
        assert answer.json()["error"]["code"] == "cross_site_request"
        assert "Origin" in answer.json()["error"]["message"]
    made = []
    for headers in ({"origin": gw.url}, {"referer": f"{gw.url}/ui/keys"}):
        answer = call(gw.url, "POST", "/api/keys", cookie=cookie, body=body, headers=headers)
        assert answer.status == 201, (headers, answer.text)
        made.append(answer.json()["id"])
    # A bearer key needs no Origin: scripts are not browsers.
    assert call(gw.url, "POST", "/api/keys", token=ADMIN, body=body).status == 201
    # Reading with the cookie needs none either.
    assert call(gw.url, "GET", "/api/keys", cookie=cookie).status == 200
    for key_id in made:
        assert call(gw.url, "DELETE", f"/api/keys/{key_id}", cookie=cookie,
                    headers={"origin": gw.url}).status == 200


def test_a_forwarded_host_does_not_vouch_for_another_origin(gw: GatewayThread) -> None:
    """X-Forwarded-Host is sent by whoever sends the request: from a client that is not a
    configured proxy it is ignored, so another site cannot name itself the host."""
    cookie = login(gw.url, OPERATOR)
    for headers in ({"origin": "http://evil.example", "x-forwarded-host": "evil.example"},
                    {"referer": "http://evil.example/x", "x-forwarded-host": "evil.example"}):
        answer = call(gw.url, "POST", "/api/admin/reload", cookie=cookie, headers=headers)
        assert answer.status == 403, headers
        assert answer.json()["error"]["code"] == "cross_site_request"


def test_configured_origins_and_trusted_proxies_are_the_gateway_s_own(tmp_path: Path) -> None:
    data = config(tmp_path)
    data["server"] = {**data["server"], "public_origins": ["https://dash.example.com"]}
    with GatewayThread(data) as g:
        cookie = login(g.url, ADMIN)
        body = {"name": "origin-check", "role": "app"}
        ok = call(g.url, "POST", "/api/keys", cookie=cookie, body=body,
                  headers={"origin": "https://dash.example.com"})
        assert ok.status == 201, ok.text
        proxied = call(g.url, "POST", "/api/keys", cookie=cookie, body=body,
                       headers={"origin": "https://other.example.com",
                                "x-forwarded-host": "other.example.com"})
        assert proxied.status == 403
    data["server"] = {**data["server"], "trusted_proxies": ["127.0.0.0/8"]}
    with GatewayThread(data) as g:
        cookie = login(g.url, ADMIN)
        proxied = call(g.url, "POST", "/api/keys", cookie=cookie, body=body,
                       headers={"origin": "https://other.example.com",
                                "x-forwarded-host": "other.example.com"})
        assert proxied.status == 201, proxied.text


def test_logging_out_from_another_site_is_refused(gw: GatewayThread) -> None:
    cookie = login(gw.url, ADMIN)
    answer = call(gw.url, "POST", "/ui/logout", cookie=cookie,
                  headers={"origin": "http://evil.example"})
    assert answer.status == 403
    assert answer.json()["error"]["code"] == "cross_site_request"
    assert answer.cookie("warden_session") is None
    assert call(gw.url, "GET", "/api/requests", cookie=cookie).status == 200


def test_a_viewer_cookie_cannot_administer(gw: GatewayThread) -> None:
    cookie = login(gw.url, VIEWER)
    answer = call(gw.url, "POST", "/api/keys", cookie=cookie, body={"name": "x"},
                  headers={"origin": gw.url})
    assert answer.status == 403
    assert answer.json()["error"]["code"] == "role_not_allowed"


def test_logging_out_clears_the_cookie(gw: GatewayThread) -> None:
    cookie = login(gw.url, ADMIN)
    answer = call(gw.url, "POST", "/ui/logout", cookie=cookie, headers={"origin": gw.url})
    assert answer.status == 303 and answer.headers["location"] == "/ui/login"
    cleared = answer.cookie("warden_session")
    assert cleared is not None and 'warden_session=""' in cleared.replace("''", '""')
    assert "Max-Age=0" in cleared


def test_a_new_admin_key_ends_the_old_one_s_sessions(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path)))
    with GatewayThread(config(tmp_path), config_path=path) as g:
        cookie = login(g.url, ADMIN)
        path.write_text(yaml.safe_dump(config(tmp_path, admin="a-brand-new-admin-key")))
        assert call(g.url, "POST", "/api/admin/reload", token=ADMIN).status == 200
        answer = call(g.url, "GET", "/api/requests", cookie=cookie)
        assert answer.status == 401
        assert "new token" in answer.json()["error"]["message"]


def test_replicas_with_one_secret_share_sessions_and_others_do_not(tmp_path: Path) -> None:
    with GatewayThread(config(tmp_path / "a")) as a, GatewayThread(config(tmp_path / "b")) as b, \
            GatewayThread(config(tmp_path / "c", secret=None)) as c:
        cookie = login(a.url, ADMIN)
        assert call(b.url, "GET", "/api/requests", cookie=cookie).status == 200
        assert call(c.url, "GET", "/api/requests", cookie=cookie).status == 401
        own = login(c.url, ADMIN)  # a random secret of its own: its sessions are its own
        assert call(c.url, "GET", "/api/requests", cookie=own).status == 200
        assert call(a.url, "GET", "/api/requests", cookie=own).status == 401


def test_another_site_cannot_log_a_visitor_in(gw: GatewayThread) -> None:
    answer = call(gw.url, "POST", "/ui/login", form={"key": ADMIN},
                  headers={"origin": "http://evil.example"})
    assert answer.status == 403 and answer.cookie("warden_session") is None
    assert 'data-testid="login-error"' in answer.text
    same = call(gw.url, "POST", "/ui/login", form={"key": ADMIN}, headers={"origin": gw.url})
    assert same.status == 303 and same.cookie("warden_session") is not None
