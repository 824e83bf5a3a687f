"""Fuzzing the HTTP API with hypothesis: malformed, hostile and merely odd requests to every
endpoint, over real HTTP. Whatever comes in, the gateway answers — never a 5xx, never a crash —
and every error is an OpenAI-style error object."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import GatewayThread
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "fuzz-admin-key-1"
MODELS = ["chat", "echo", "guarded", "emb"]

scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**63) |
           st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=12)
contents = (st.text(max_size=200) | st.none() | st.integers() | st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "x"])},
                          optional={"text": st.text(max_size=50) | st.integers()}), max_size=3)
    | json_values)
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "x"])
     | st.integers()},
    optional={"content": contents, "name": st.text(max_size=10), "tool_call_id": scalars}),
    max_size=4) | json_values
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(MODELS) | st.text(max_size=20) | scalars,
        "messages": messages,
        "stream": st.booleans() | scalars,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": scalars})
        | scalars,
        "temperature": st.floats(-5, 5) | scalars,
        "top_p": st.floats(-1, 2) | scalars,
        "max_tokens": st.integers(-10, 10**9) | scalars,
        "n": st.integers(-2, 5) | scalars,
        "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=5) | scalars,
        "user": scalars,
        "metadata": json_values,
        "response_format": st.fixed_dictionaries({"type": st.sampled_from(
            ["json_object", "json_schema", "text", "x"])}) | scalars,
        "tools": json_values,
        "seed": scalars,
        "logprobs": scalars,
        "extra": json_values,
    })
completion_bodies = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(MODELS) | scalars,
    "prompt": st.text(max_size=100) | st.lists(st.text(max_size=20) | st.integers(), max_size=3)
    | scalars,
    "stream": st.booleans() | scalars, "max_tokens": st.integers(-5, 50) | scalars,
    "echo": scalars, "suffix": scalars,
})
embedding_bodies = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(MODELS) | scalars,
    "input": st.text(max_size=100) | st.lists(st.text(max_size=20) | st.integers(), max_size=4)
    | scalars,
    "dimensions": scalars, "encoding_format": st.sampled_from(["float", "base64", "x"]) | scalars,
})
query_params = st.dictionaries(
    st.sampled_from(["since", "until", "model", "deployment", "key", "user", "session",
                     "status", "tag", "q", "limit", "cursor", "bucket", "group_by", "x"]),
    st.text(max_size=30) | st.integers().map(str) | st.floats(allow_nan=True).map(str),
    max_size=5)


class Client:
    """One keep-alive connection to the gateway."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, method: str, path: str, body: bytes | None,
             headers: dict[str, str]) -> tuple[int, bytes, str]:
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read(), resp.getheader("content-type") or ""
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def check(status: int, data: bytes, content_type: str) -> None:
    assert status < 500, (status, data[:500])
    if status >= 400 and status != 405:
        error = json.loads(data)["error"]
        assert isinstance(error["message"], str) and error["message"]
    if content_type.startswith("text/event-stream"):
        lines = [x for x in data.decode().splitlines() if x.startswith("data: ")]
        assert lines, data[:200]
        for line in lines:
            if line != "data: [DONE]":
                json.loads(line[6:])


@pytest.fixture(scope="module")
def gateway() -> Iterator[Client]:
    up = FakeOpenAIUpstream()
    with ServerThread(up.http):
        config = {
            "admin_key": ADMIN,
            "guard": {"policies": {"p": {
                "input": [{"scanner": "secrets", "action": "redact"},
                          {"scanner": "injection", "action": "flag"},
                          {"scanner": "hidden_text", "action": "block"}],
                "output": [{"scanner": "secrets", "action": "redact"},
                           {"scanner": "toxicity", "action": "flag"}]}}},
            "models": [
                {"name": "chat", "routing": {"retries": 0},
                 "deployments": [{"id": "up", "provider": "openai", "base_url": up.base_url}]},
                {"name": "echo", "deployments": [{"id": "f", "provider": "fake"}]},
                {"name": "guarded", "guard": "p",
                 "deployments": [{"id": "g", "provider": "openai", "base_url": up.base_url}]},
                {"name": "emb", "deployments": [{"id": "e", "provider": "fake"}]},
            ]}
        with GatewayThread(config) as gw:
            client = Client(gw.port)
            yield client
            client.conn.close()


EXAMPLES = int(os.environ.get("WARDEN_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(body=chat_bodies)
def test_chat_completions_never_fail_with_a_server_error(gateway: Client,
                                                         body: dict[str, Any]) -> None:
    check(*gateway.send("POST", "/v1/chat/completions", json.dumps(body).encode(),
                        {"content-type": "application/json"}))


@FUZZ
@given(body=completion_bodies | embedding_bodies, path=st.sampled_from(
    ["/v1/completions", "/v1/embeddings"]))
def test_completions_and_embeddings_never_fail_with_a_server_error(
        gateway: Client, body: dict[str, Any], path: str) -> None:
    check(*gateway.send("POST", path, json.dumps(body).encode(),
                        {"content-type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
       path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                             "/api/feedback", "/api/keys", "/api/admin/reload"]),
       auth=st.sampled_from(["", "Bearer ", f"Bearer {ADMIN}", "Basic x", "Bearer \u00e9"]))
def test_arbitrary_bytes_and_credentials_get_a_clear_error(gateway: Client, raw: bytes,
                                                           path: str, auth: str) -> None:
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = auth.encode("utf-8").decode("latin-1")
    check(*gateway.send("POST", path, raw, headers))


@FUZZ
@given(params=query_params, path=st.sampled_from(
    ["/api/requests", "/api/stats", "/api/resources", "/api/deployments", "/api/keys",
     "/v1/models", "/api/requests/x", "/metrics"]))
def test_query_endpoints_survive_any_parameters(gateway: Client, params: dict[str, str],
                                                path: str) -> None:
    query = urllib.parse.urlencode(params)
    check(*gateway.send("GET", f"{path}?{query}", None, {"authorization": f"Bearer {ADMIN}"}))


@FUZZ
@given(body=json_values | st.fixed_dictionaries({}, optional={
    "request_id": scalars, "score": scalars | st.floats(allow_nan=False), "label": scalars,
    "comment": scalars, "source": scalars}))
def test_feedback_survives_any_body(gateway: Client, body: Any) -> None:
    check(*gateway.send("POST", "/api/feedback", json.dumps(body).encode(),
                        {"authorization": f"Bearer {ADMIN}", "content-type": "application/json"}))
