"""The anthropic provider: OpenAI chat in, Anthropic Messages upstream, OpenAI chat out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.helpers import GatewayThread
from warden.config import Deployment
from warden.errors import InvalidRequest, UpstreamError, UpstreamStatus
from warden.providers.anthropic import AnthropicParams, AnthropicProvider
from warden.providers.anthropic_wire import (
    StreamTranslator,
    UpstreamOverloaded,
    from_messages_response,
    to_messages_request,
)
from warden.testing.anthropic_upstream import FakeAnthropicUpstream
from warden.testing.httpserver import ServerThread

LOOKUP: dict[str, Any] = {"type": "function", "function": {
    "name": "lookup", "description": "Search the index.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}


@pytest.fixture
def claude() -> Iterator[FakeAnthropicUpstream]:
    """A fake Anthropic Messages API on a free loopback port."""
    up = FakeAnthropicUpstream()
    with ServerThread(up.http):
        yield up


@pytest.fixture
def gateway(claude: FakeAnthropicUpstream) -> Iterator[GatewayThread]:
    deployment = {"provider": "anthropic", "model": "claude-fake", "api_key": "sk-ant-test"}
    config = {"models": [
        {"name": "claude", "deployments": [
            {**deployment, "id": "anth", "base_url": claude.base_url,
             "headers": {"x-team": "search"}}]},
        {"name": "claude-v1", "deployments": [
            {**deployment, "id": "anth-v1", "base_url": claude.base_url + "/v1",
             "params": {"default_max_tokens": 3}}]},
    ]}
    with GatewayThread(config) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayThread) -> openai.OpenAI:
    return gateway.client(api_key="unused", max_retries=0,
                         timeout=15)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- through the gateway, with the official client -----------------------------------------

def test_chat_completion_is_translated_to_messages_and_back(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    resp = client.chat.completions.create(
        model="claude", messages=user("hello from the test"), temperature=0.2, top_p=0.9,
        user="alice", max_tokens=50, extra_headers={"x-request-id": "rid-7"},
    )
    assert resp.choices[0].message.content == "hello from the test"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.id.startswith("msg_") and resp.object == "chat.completion"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (4, 4)
    assert claude.seen.paths[-1] == "/v1/messages"
    assert claude.seen.bodies[-1] == {
        "model": "claude-fake", "max_tokens": 50, "temperature": 0.2, "top_p": 0.9,
        "metadata": {"user_id": "alice"},
        "messages": [{"role": "user", "content": "hello from the test"}]}
    headers = claude.seen.headers[-1]
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-team"] == "search"
    assert headers["x-request-id"] == "rid-7"
    assert headers["traceparent"].startswith("00-")
    assert "authorization" not in headers


def test_system_and_developer_messages_become_the_system_prompt(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    resp = client.chat.completions.create(model="claude", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ])
    sent = claude.seen.bodies[-1]
    assert sent["system"] == "Be brief.\n\nBe kind."
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "first"}, {"type": "text", "text": "second"}]}]
    assert resp.choices[0].message.content == "first second"


def test_tool_calls_and_tool_results_are_translated_both_ways(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    first = client.chat.completions.create(
        model="claude", messages=user("find it"), tools=[LOOKUP],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    sent = claude.seen.bodies[-1]
    assert sent["tools"] == [{"name": "lookup", "description": "Search the index.",
                              "input_schema": LOOKUP["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "tool", "name": "lookup"}
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"q": "find it"}

    second = client.chat.completions.create(model="claude", tools=[LOOKUP], messages=[
        {"role": "user", "content": "find it"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "42 results"},
    ])
    sent = claude.seen.bodies[-1]
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": call.id, "name": "lookup", "input": {"q": "find it"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "42 results"}]},
    ]
    assert "tool_choice" not in sent
    assert second.choices[0].message.content == "42 results"
    assert second.choices[0].finish_reason == "stop"


def test_streaming_text_delivers_every_token_and_usage_on_request(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    chunks = list(client.chat.completions.create(
        model="claude", messages=user("one two three four"), stream=True,
        stream_options={"include_usage": True},
    ))
    assert claude.seen.bodies[-1]["stream"] is True
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 4)


def test_streaming_without_include_usage_sends_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="claude", messages=user("a b"), stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def test_streaming_tool_call_arrives_as_id_name_then_argument_fragments(
    client: openai.OpenAI,
) -> None:
    chunks = list(client.chat.completions.create(
        model="claude", messages=user("find it"), tools=[LOOKUP], tool_choice="required",
        stream=True,
    ))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id and calls[0].function.name == "lookup"
    assert {tc.index for tc in calls} == {0}
    args = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(args) == {"q": "find it"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stop_sequences_and_max_tokens(client: openai.OpenAI,
                                       claude: FakeAnthropicUpstream) -> None:
    words = user("alpha beta gamma delta")
    stopped = client.chat.completions.create(model="claude", messages=words, stop=" gamma")
    assert claude.seen.bodies[-1]["stop_sequences"] == [" gamma"]
    assert stopped.choices[0].message.content == "alpha beta"
    assert stopped.choices[0].finish_reason == "stop"
    short = client.chat.completions.create(model="claude", messages=words,
                                           max_completion_tokens=2)
    assert claude.seen.bodies[-1]["max_tokens"] == 2
    assert short.choices[0].message.content == "alpha beta"
    assert short.choices[0].finish_reason == "length"


def test_default_max_tokens_and_a_base_url_ending_in_v1(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    resp = client.chat.completions.create(model="claude-v1",
                                          messages=user("alpha beta gamma delta"))
    assert claude.seen.paths[-1] == "/v1/messages"
    assert claude.seen.bodies[-1]["max_tokens"] == 3
    assert resp.choices[0].message.content == "alpha beta gamma"
    assert resp.choices[0].finish_reason == "length"


def test_cache_reads_count_as_cached_prompt_tokens(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    claude.behaviour.cache_read_tokens = 10
    resp = client.chat.completions.create(model="claude", messages=user("a b"))
    assert resp.usage is not None and resp.usage.prompt_tokens == 12
    assert resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == 10


def test_upstream_400_is_passed_to_the_client_and_not_retried(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    claude.behaviour.fail_status = 400
    before = claude.seen.requests
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=user("x"))
    assert "upstream failure 400" in info.value.message
    assert claude.seen.requests == before + 1


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_529_overloaded_is_retried_then_a_503(
    client: openai.OpenAI, claude: FakeAnthropicUpstream, stream: bool
) -> None:
    claude.behaviour.fail_status = 529
    before = claude.seen.requests
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="claude", messages=user("x"), stream=stream)
    assert info.value.status_code == 503
    assert "overloaded" in info.value.message.lower()
    assert info.value.response.headers["retry-after"]
    assert claude.seen.requests == before + 3  # one try and two retries


def test_an_overloaded_error_event_before_any_chunk_is_retried(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    claude.behaviour.error_after_events = 0
    before = claude.seen.requests
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="claude", messages=user("x"), stream=True)
    assert info.value.status_code == 503
    assert claude.seen.requests == before + 3


@pytest.mark.parametrize("fault", ["die_after_events", "error_after_events"])
def test_a_stream_broken_midway_raises_in_the_client(
    client: openai.OpenAI, claude: FakeAnthropicUpstream, fault: str
) -> None:
    setattr(claude.behaviour, fault, 4)  # after message_start, ping, block start, one word
    stream = client.chat.completions.create(
        model="claude", messages=user("one two three four"), stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(got) == "one"


@pytest.mark.parametrize("call", ["completions", "embeddings"])
def test_only_chat_completions_are_served(
    client: openai.OpenAI, claude: FakeAnthropicUpstream, call: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        if call == "completions":
            client.completions.create(model="claude", prompt="complete me")
        else:
            client.embeddings.create(model="claude", input="embed me")
    assert "only chat completions" in info.value.message
    assert claude.seen.requests == 0


def test_untranslatable_requests_are_400s_naming_the_parameter(
    client: openai.OpenAI, claude: FakeAnthropicUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
                "name": "lookup", "arguments": "{not json"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"}])
    assert info.value.body["param"] == "messages[1].tool_calls[0].function.arguments"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=user("x"), n=2)
    assert info.value.body["param"] == "n"
    assert claude.seen.requests == 0


# --- the provider alone ---------------------------------------------------------------------

def _provider(base_url: str, api_key: str | None = "k") -> AnthropicProvider:
    dep = Deployment(id="d", provider="anthropic", base_url=base_url, api_key=api_key)
    return AnthropicProvider(dep, AnthropicParams())


async def test_check_lists_models_and_fails_on_an_error_status(
    claude: FakeAnthropicUpstream,
) -> None:
    provider = _provider(claude.base_url + "/v1/")
    try:
        await provider.check(5)
        assert claude.seen.paths[-1] == "/v1/models"
        claude.behaviour.fail_status = 529
        with pytest.raises(UpstreamOverloaded):
            await provider.check(5)
    finally:
        await provider.aclose()
    claude.behaviour.fail_status = None
    keyless = _provider(claude.base_url, api_key=None)
    try:
        with pytest.raises(UpstreamStatus) as info:
            await keyless.check(5)
        assert info.value.upstream_status == 401
        assert "x-api-key" in info.value.message
    finally:
        await keyless.aclose()


# --- the translation functions --------------------------------------------------------------

def test_request_translation_of_images_tools_and_parameters() -> None:
    out = to_messages_request({
        "model": "m", "max_tokens": 9, "max_completion_tokens": 7, "stop": ["END", ""],
        "tools": [LOOKUP], "tool_choice": "required", "parallel_tool_calls": False,
        "response_format": {"type": "json_object"}, "seed": 1,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]},
            {"role": "assistant", "content": "calling", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "lookup", "arguments": ""}},
                {"id": "b", "type": "function",
                 "function": {"name": "lookup", "arguments": '{"q": "z"}'}}]},
            {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "r1"}]},
            {"role": "tool", "tool_call_id": "b", "content": ""},
            {"role": "user", "content": "thanks"},
        ]}, default_max_tokens=100)
    assert out["max_tokens"] == 7
    assert out["stop_sequences"] == ["END"]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert "response_format" not in out and "seed" not in out and "system" not in out
    user_turn, assistant, results = out["messages"]
    assert user_turn["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "AAAA"}}
    assert user_turn["content"][2]["source"] == {"type": "url", "url": "https://x.test/a.jpg"}
    assert assistant["content"][0] == {"type": "text", "text": "calling"}
    assert [b["input"] for b in assistant["content"][1:]] == [{}, {"q": "z"}]
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "a", "content": "r1"},
        {"type": "tool_result", "tool_use_id": "b"},
        {"type": "text", "text": "thanks"}]}


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "lookup"}}, {"type": "tool", "name": "lookup"}),
    (None, None),
])
def test_tool_choice_mapping(choice: Any, expected: Any) -> None:
    body = {"model": "m", "messages": user("x"), "tools": [LOOKUP], "tool_choice": choice}
    assert to_messages_request(body, default_max_tokens=1).get("tool_choice") == expected


@pytest.mark.parametrize(("message", "param"), [
    ({"role": "user", "content": [{"type": "input_audio"}]}, "messages[0].content[0]"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]},
     "messages[0].content[0].image_url.url"),
    ({"role": "tool", "content": "r"}, "messages[0].tool_call_id"),
    ({"role": "function", "name": "f", "content": "r"}, "messages[0].role"),
])
def test_untranslatable_messages_name_the_parameter(message: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        to_messages_request({"model": "m", "messages": [message]}, default_max_tokens=1)
    assert info.value.param == param


def test_response_translation_joins_text_and_maps_tool_use_and_usage() -> None:
    out = from_messages_response({
        "id": "msg_1", "model": "claude", "stop_reason": "tool_use",
        "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "a"},
                    {"type": "text", "text": "b"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}],
        "usage": {"input_tokens": 3, "output_tokens": 5, "cache_read_input_tokens": 4,
                  "cache_creation_input_tokens": 2}})
    message = out["choices"][0]["message"]
    assert message["content"] == "ab"
    assert message["tool_calls"] == [{"id": "t1", "type": "function",
                                      "function": {"name": "f", "arguments": '{"x":1}'}}]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14,
                            "prompt_tokens_details": {"cached_tokens": 4}}


def test_stream_translation_of_a_whole_event_sequence() -> None:
    t = StreamTranslator("deployment 'd'")
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage": {
            "input_tokens": 5, "output_tokens": 1}}},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '{"x":'}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 7, "input_tokens": None}},
        {"type": "message_stop"},
    ]
    chunks = [c for e in events for c in t.feed(e)]
    assert t.done
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                         "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 5
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert {c["id"] for c in chunks} == {"msg_1"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_stream_error_events_raise() -> None:
    t = StreamTranslator("deployment 'd'")
    with pytest.raises(UpstreamOverloaded) as info:
        t.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.status == 503 and info.value.retryable
    with pytest.raises(UpstreamError) as other:
        t.feed({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    assert "boom" in other.value.message and other.value.status == 502
    with pytest.raises(UpstreamError):
        t.feed({"type": "content_block_delta", "index": 9,
                "delta": {"type": "input_json_delta", "partial_json": "{}"}})
