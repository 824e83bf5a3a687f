"""OpenTelemetry traces: a server span per request with GenAI attributes, children per pipeline
stage and upstream attempt, exported over OTLP/HTTP to a real collector; the ids match what the
client and the upstream saw."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.helpers import GatewayThread
from warden.testing.httpserver import ServerThread
from warden.testing.otlp import CollectedSpan, OtlpCollector
from warden.testing.upstream import FakeOpenAIUpstream

SERVER, CLIENT = 2, 3  # OTLP span kinds
ERROR = 2  # OTLP status code


@pytest.fixture
def traced() -> Iterator[tuple[GatewayThread, FakeOpenAIUpstream, OtlpCollector]]:
    up = FakeOpenAIUpstream()
    collector = OtlpCollector()
    with ServerThread(up.http), ServerThread(collector.http):
        config = {
            "tracing": {"otlp_endpoint": collector.endpoint, "service_name": "gw-test",
                        "headers": {"x-collector-token": "t0k"}, "timeout_s": 2},
            "models": [
                {"name": "chat", "routing": {"retries": 1, "backoff_s": 0},
                 "deployments": [{"id": "up", "provider": "openai", "base_url": up.base_url,
                                  "model": "gpt-4o-mini"}]},
                {"name": "echo", "deployments": [{"id": "fake-1", "provider": "fake"}]},
            ],
        }
        with GatewayThread(config) as gw:
            yield gw, up, collector


def wait_spans(collector: OtlpCollector, trace_id: str, n: int) -> list[CollectedSpan]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        spans = collector.by_trace(trace_id)
        if len(spans) >= n:
            return spans
        time.sleep(0.05)
    return collector.by_trace(trace_id)


def test_a_request_becomes_a_server_span_with_stage_and_attempt_children(traced: Any) -> None:
    gw, up, collector = traced
    client_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    client_span = "00f067aa0ba902b7"
    raw = gw.client(max_retries=0).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hello"}], temperature=0.2,
        max_tokens=50, extra_headers={"traceparent": f"00-{client_trace}-{client_span}-01",
                                      "x-request-id": "traced-1"})
    returned = raw.headers["traceparent"].split("-")
    assert returned[1] == client_trace
    spans = wait_spans(collector, client_trace, 6)

    server = [s for s in spans if s.kind == SERVER]
    assert len(server) == 1
    root = server[0]
    assert root.span_id == returned[2]  # the span the client was told about
    assert root.parent_span_id == client_span
    assert root.name == "chat chat"
    attrs = root.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "chat"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == 1
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["gen_ai.request.temperature"] == pytest.approx(0.2)
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["warden.client_request_id"] == "traced-1"
    assert len(attrs["warden.request_id"]) == 24  # the record's own id
    assert attrs["http.response.status_code"] == 200
    assert root.resource["service.name"] == "gw-test"
    assert collector.headers[-1]["x-collector-token"] == "t0k"

    children = [s for s in spans if s.parent_span_id == root.span_id]
    names = {s.name for s in children}
    assert {"warden.authenticate", "warden.parse_body", "warden.authorize",
            "warden.route_and_call"} <= names
    attempt = [s for s in children if s.kind == CLIENT]
    assert len(attempt) == 1
    # The upstream received this attempt's span as its parent.
    assert up.seen.headers[-1]["traceparent"].split("-")[2] == attempt[0].span_id
    assert attempt[0].attributes["warden.deployment"] == "up"
    for child in children:
        assert root.start_ns <= child.start_ns <= child.end_ns <= root.end_ns + 1_000


def test_a_retried_and_failed_request_shows_each_attempt_as_an_error(traced: Any) -> None:
    gw, up, collector = traced
    up.behaviour.fail_status = 500
    with pytest.raises(openai.InternalServerError) as info:
        gw.client(max_retries=0).chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}])
    trace_id = info.value.response.headers["traceparent"].split("-")[1]
    spans = wait_spans(collector, trace_id, 7)
    root = next(s for s in spans if s.kind == SERVER)
    assert root.status_code == ERROR
    assert root.attributes["error.type"] == "upstream_error"
    assert root.attributes["http.response.status_code"] == 502
    attempts = [s for s in spans if s.kind == CLIENT]
    assert len(attempts) == 2
    assert all(a.status_code == ERROR and a.attributes["http.response.status_code"] == 500
               for a in attempts)
    sent = {h["traceparent"].split("-")[2] for h in up.seen.headers[-2:]}
    assert sent == {a.span_id for a in attempts}


def test_streams_and_many_requests_each_export_one_trace(traced: Any) -> None:
    gw, _, collector = traced
    client = gw.client(max_retries=0)
    traces = []
    for i in range(20):
        raw = client.chat.completions.with_raw_response.create(
            model="echo", stream=i % 2 == 0, messages=[{"role": "user", "content": f"w {i}"}])
        if i % 2 == 0:
            list(raw.parse())
        traces.append(raw.headers["traceparent"].split("-")[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        roots = [s for s in collector.spans if s.kind == SERVER]
        if len(roots) >= 20:
            break
        time.sleep(0.05)
    roots = [s for s in collector.spans if s.kind == SERVER]
    assert sorted(s.trace_id for s in roots) == sorted(traces)
    streamed = [s for s in roots if s.attributes["warden.stream"]]
    assert len(streamed) == 10
    assert all(s.attributes["gen_ai.usage.output_tokens"] == 2 for s in streamed)


def test_an_unsampled_client_trace_is_not_exported(traced: Any) -> None:
    gw, _, collector = traced
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    gw.client(max_retries=0).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "quiet"}],
        extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"})
    gw.client(max_retries=0).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "loud"}])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [s for s in collector.spans if s.kind == SERVER]:
        time.sleep(0.05)
    time.sleep(1.2)  # one more export interval
    assert collector.by_trace(trace_id) == []
    assert len([s for s in collector.spans if s.kind == SERVER]) == 1


def test_a_collector_that_is_down_never_fails_a_request(traced: Any) -> None:
    gw, _, collector = traced
    collector.fail_status = 503
    client = gw.client(max_retries=0)
    for _ in range(10):
        assert client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "x"}]).choices
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(gw.url + "/metrics") as resp:
            text = resp.read().decode()
        if 'warden_trace_spans_total{outcome="failed"}' in text and collector.posts:
            failed = [line for line in text.splitlines()
                      if line.startswith('warden_trace_spans_total{outcome="failed"}')]
            if failed and float(failed[0].split()[-1]) > 0:
                break
        time.sleep(0.2)
    failed = [line for line in text.splitlines()
              if line.startswith('warden_trace_spans_total{outcome="failed"}')]
    assert failed and float(failed[0].split()[-1]) >= 10
