"""Client keys from the config, the admin key, and what each may reach."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import openai
import pytest

from tests.helpers import GatewayThread

ADMIN = "the-admin-key"


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayThread]:
    config = {
        "admin_key": ADMIN,
        "server": {"max_body_bytes": 4096},
        "keys": [{"key": "sk-app-000001", "name": "app", "models": ["a"]},
                 {"key": "sk-all-000002", "name": "all"}],
        "models": [{"name": n, "deployments": [{"id": "f", "provider": "fake"}]} for n in "ab"],
    }
    with GatewayThread(config) as g:
        yield g


def c(gw: GatewayThread, key: str) -> openai.OpenAI:
    return gw.client(api_key=key, max_retries=0)


MSG = [{"role": "user", "content": "hi"}]


def test_no_key_or_a_wrong_key_is_401(gw: GatewayThread) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        c(gw, "sk-wrong-key").chat.completions.create(model="a", messages=MSG)
    assert info.value.body["type"] == "authentication_error"
    req = urllib.request.Request(gw.url + "/v1/chat/completions", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 401
    assert "Authorization: Bearer" in json.loads(err.value.read())["error"]["message"]
    err.value.close()


def test_a_key_outside_its_models_is_403_and_sees_only_its_models(gw: GatewayThread) -> None:
    app = c(gw, "sk-app-000001")
    assert app.chat.completions.create(model="a", messages=MSG).choices
    with pytest.raises(openai.PermissionDeniedError) as info:
        app.chat.completions.create(model="b", messages=MSG)
    assert info.value.body["param"] == "model"
    assert [m.id for m in app.models.list()] == ["a"]
    assert sorted(m.id for m in c(gw, "sk-all-000002").models.list()) == ["a", "b"]


def test_the_admin_key_also_works_on_the_api(gw: GatewayThread) -> None:
    assert c(gw, ADMIN).chat.completions.create(model="b", messages=MSG).choices


def test_admin_endpoints_refuse_client_keys(gw: GatewayThread) -> None:
    # A client key (role app) is known but not allowed there: 403; no key or a wrong one: 401.
    for token, status in (("sk-all-000002", 403), ("sk-wrong-key", 401), (None, 401), (ADMIN, 200)):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(gw.url + "/api/deployments", headers=headers)
        try:
            with urllib.request.urlopen(req) as resp:
                got = resp.status
        except urllib.error.HTTPError as exc:
            got = exc.code
            exc.close()
        assert got == status


def test_config_endpoint_hides_secrets(gw: GatewayThread) -> None:
    req = urllib.request.Request(gw.url + "/api/config",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as resp:
        text = resp.read().decode()
    assert ADMIN not in text and "sk-app-000001" not in text
    assert '"admin_key":"***"' in text


def test_without_an_admin_key_admin_endpoints_say_how_to_enable_them() -> None:
    config = {"models": [{"name": "a", "deployments": [{"id": "f", "provider": "fake"}]}]}
    with GatewayThread(config) as g:
        req = urllib.request.Request(g.url + "/api/deployments",
                                     headers={"Authorization": "Bearer x"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == 403
        assert "WARDEN_ADMIN_KEY" in json.loads(info.value.read())["error"]["message"]
        info.value.close()


def test_health_endpoints_need_no_key(gw: GatewayThread) -> None:
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(gw.url + path) as resp:
            assert resp.status == 200


def test_unknown_paths_and_methods_get_openai_error_objects(gw: GatewayThread) -> None:
    for path, method, status in (("/v1/nothing", "GET", 404), ("/v1/chat/completions", "GET", 405)):
        req = urllib.request.Request(gw.url + path, method=method)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == status
        assert "message" in json.loads(info.value.read())["error"]
        info.value.close()


def test_invalid_json_and_oversized_bodies_are_400_and_413(gw: GatewayThread) -> None:
    headers = {"Authorization": "Bearer sk-all-000002", "content-type": "application/json"}
    for data, status in ((b"{not json", 400), (b"x" * 5000, 413)):
        req = urllib.request.Request(gw.url + "/v1/chat/completions", data=data, method="POST",
                                     headers=headers)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == status
        info.value.close()
