"""Credentials in a deployment's base_url: used for basic auth, refused at config time next to
an Authorization header (the HTTP client cannot send both), and never repeated in errors."""

from __future__ import annotations

import json
import urllib.request

import httpx
import pytest

from tests.helpers import GatewayThread
from warden.errors import ConfigError
from warden.providers.http import hide_credentials
from warden.testing.anthropic_upstream import FakeAnthropicUpstream
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "credentials-admin"
SECRET = "s3cret-pw"


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{SECRET}@")


def chat(gw: GatewayThread, model: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", timeout=20, json={
        "model": model, "messages": [{"role": "user", "content": "hi there"}]})


@pytest.mark.parametrize("extra", [{"api_key": "sk-upstream"},
                                   {"headers": {"authorization": "Bearer sk-upstream"}}],
                         ids=["api_key", "header"])
def test_credentials_in_base_url_next_to_an_authorization_header_are_refused(
        extra: dict[str, object]) -> None:
    config = {"models": [{"name": "m", "deployments": [
        {"id": "basic", "provider": "openai",
         "base_url": with_credentials("http://127.0.0.1:8000/v1"), **extra}]}]}
    with pytest.raises(ConfigError) as caught:
        GatewayThread(config)
    message = str(caught.value)
    assert "deployment 'basic': base_url carries credentials" in message
    assert "keep one" in message and SECRET not in message


def test_credentials_in_base_url_are_sent_as_basic_auth() -> None:
    up, anthropic = FakeOpenAIUpstream(), FakeAnthropicUpstream()
    with ServerThread(up.http), ServerThread(anthropic.http):
        config = {"models": [
            {"name": "m", "deployments": [{"id": "basic", "provider": "openai",
                                           "base_url": with_credentials(up.base_url)}]},
            # Anthropic's key travels in x-api-key: both can be given.
            {"name": "a", "deployments": [{"id": "claude", "provider": "anthropic",
                                           "api_key": "k",
                                           "base_url": with_credentials(anthropic.base_url)}]}]}
        with GatewayThread(config) as gw:
            assert chat(gw, "m").status_code == 200
            assert chat(gw, "a").status_code == 200
    assert up.seen.headers[0]["authorization"].startswith("Basic ")
    assert anthropic.seen.headers[0]["authorization"].startswith("Basic ")


def test_credentials_in_base_url_never_appear_in_errors() -> None:
    # A port out of range: the HTTP client refuses the URL and names it in its error.
    config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {"retries": 0},
              "deployments": [{"id": "basic", "provider": "openai",
                               "base_url": with_credentials("http://127.0.0.1:99999/v1")}]}]}
    with GatewayThread(config) as gw:
        resp = chat(gw, "m")
        req = urllib.request.Request(gw.url + "/api/deployments",
                                     headers={"Authorization": f"Bearer {ADMIN}"})
        with urllib.request.urlopen(req) as got:
            last_error = json.loads(got.read())["data"][0]["last_error"]
    assert resp.status_code == 502
    message = resp.json()["error"]["message"]
    assert "127.0.0.1:99999" in message and "***@" in message
    assert SECRET not in message and SECRET not in last_error


def test_hide_credentials_masks_every_url_in_a_text() -> None:
    text = "a http://u:p@h:1/x and https://tok@host/y, not mail@example.com"
    assert hide_credentials(text) == ("a http://***@h:1/x and https://***@host/y, "
                                      "not mail@example.com")
