"""The official openai client works unchanged against the gateway, streaming and errors included."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.helpers import GatewayThread
from warden.testing.upstream import FakeOpenAIUpstream


@pytest.fixture
def gateway(upstream: FakeOpenAIUpstream) -> Iterator[GatewayThread]:
    config = {
        "models": [
            {"name": "chat", "deployments": [
                {"id": "up", "provider": "openai", "base_url": upstream.base_url,
                 "model": "upstream-model", "api_key": "sk-upstream"}]},
            {"name": "echo", "deployments": [{"id": "fake-1", "provider": "fake"}]},
        ]
    }
    with GatewayThread(config) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayThread) -> openai.OpenAI:
    return gateway.client(api_key="unused", max_retries=0)


def test_chat_completion_passes_through_an_openai_upstream(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    resp = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hello from the test"}],
        temperature=0.2, top_p=0.9, seed=7, user="alice", max_tokens=50,
    )
    assert resp.choices[0].message.content == "hello from the test"
    assert resp.usage is not None and resp.usage.completion_tokens == 4
    sent = upstream.seen.bodies[-1]
    assert sent["model"] == "upstream-model"
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["user"]) == (0.2, 0.9, 7, "alice")
    assert upstream.seen.headers[-1]["authorization"] == "Bearer sk-upstream"


def test_response_headers_name_the_deployment_and_echo_the_request_id(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "req-abc-123"},
    )
    assert raw.headers["x-warden-deployment"] == "up"
    assert raw.headers["x-request-id"] == "req-abc-123"
    assert raw.headers["traceparent"].startswith("00-")


def test_request_id_and_traceparent_are_propagated_upstream(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "rid-1", "traceparent": trace},
    )
    sent = upstream.seen.headers[-1]
    assert sent["x-request-id"] == "rid-1"
    assert sent["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert raw.headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def test_streaming_chat_delivers_every_token_and_usage_on_request(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "one two three four"}],
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_streaming_without_include_usage_sends_no_usage_chunk(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    chunks = list(client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "a b"}], stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    # The gateway still asked the upstream for usage, for its own accounting.
    assert upstream.seen.bodies[-1]["stream_options"] == {"include_usage": True}


def test_tools_and_tool_choice_pass_through_and_tool_calls_come_back(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    resp = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "find it"}], tools=tools,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup"
    assert resp.choices[0].finish_reason == "tool_calls"


def test_response_format_and_unknown_fields_pass_through(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "{}"}],
        response_format={"type": "json_object"}, extra_body={"repetition_penalty": 1.1},
    )
    sent = upstream.seen.bodies[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["repetition_penalty"] == 1.1


def test_fake_provider_honours_n_stop_max_tokens_and_logprobs(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "alpha beta gamma delta"}],
        n=3, stop=[" gamma"], logprobs=True, top_logprobs=2,
    )
    assert len(resp.choices) == 3
    assert {c.message.content for c in resp.choices} == {"alpha beta"}
    assert resp.choices[0].logprobs is not None
    assert len(resp.choices[0].logprobs.content[0].top_logprobs) == 2
    short = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "alpha beta gamma delta"}],
        max_completion_tokens=2,
    )
    assert short.choices[0].message.content == "alpha beta"
    assert short.choices[0].finish_reason == "length"


def test_fake_provider_streams_in_several_chunks_with_n(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "x y z"}], stream=True, n=2))
    texts = {0: "", 1: ""}
    for c in chunks:
        for ch in c.choices:
            texts[ch.index] += ch.delta.content or ""
    assert texts == {0: "x y z", 1: "x y z"}
    assert len(chunks) >= 4


def test_text_completions_streamed_and_not(client: openai.OpenAI) -> None:
    resp = client.completions.create(model="chat", prompt="complete me", max_tokens=1)
    assert resp.choices[0].text == "complete"
    assert resp.choices[0].finish_reason == "length"
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="chat", prompt="stream me", stream=True) if c.choices)
    assert text == "stream me"


def test_embeddings(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="chat", input=["a", "b"])
    assert [d.index for d in resp.data] == [0, 1]
    fake = client.embeddings.create(model="echo", input="same text", dimensions=8)
    again = client.embeddings.create(model="echo", input="same text", dimensions=8)
    assert len(fake.data[0].embedding) == 8
    assert fake.data[0].embedding == again.data[0].embedding


def test_models_are_listed_and_retrievable(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list()) == ["chat", "echo"]
    assert client.models.retrieve("echo").id == "echo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing")


def test_unknown_model_is_a_404_with_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["param"] == "model"
    assert info.value.body["code"] == "model_not_found"


def test_malformed_body_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], temperature=5)
    assert info.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="chat", messages=[])
    assert info.value.body["param"] == "messages"


def test_upstream_400_is_passed_to_the_client_and_not_retried(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    upstream.behaviour.fail_status = 400
    before = upstream.seen.requests
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert "upstream failure 400" in info.value.message
    assert upstream.seen.requests == before + 1


def test_upstream_500_after_retries_is_a_502(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    upstream.behaviour.fail_status = 500
    before = upstream.seen.requests
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert upstream.seen.requests == before + 3  # one try and two retries


def test_upstream_429_is_a_429_with_retry_after(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    upstream.behaviour.fail_status = 429
    upstream.behaviour.retry_after = "0"
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "1"
