"""A stream the client abandons, or that fails half-way, releases its deployment and its upstream
connection, and leaves its record."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import GatewayThread
from warden.providers.base import ProviderCall
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "lifecycle-admin"


def in_flight(gw: GatewayThread) -> dict[str, int]:
    req = urllib.request.Request(gw.url + "/api/deployments",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as resp:
        return {d["id"]: d["in_flight"] for d in json.loads(resp.read())["data"]}


def start_stream_and_hang_up(gw: GatewayThread, model: str) -> bytes:
    body = json.dumps({"model": model, "stream": True, "messages": [
        {"role": "user", "content": " ".join(f"w{i}" for i in range(40))}]}).encode()
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
                     % (len(body), body))
        got = sock.recv(4096)
    return got


def test_abandoned_streams_release_their_deployment() -> None:
    up = FakeOpenAIUpstream()
    up.behaviour.chunk_delay_s = 0.05
    with ServerThread(up.http):
        config = {"admin_key": ADMIN, "models": [
            {"name": "fake", "deployments": [{"id": "f", "provider": "fake",
                                              "params": {"tokens_per_s": 20}}]},
            {"name": "up", "deployments": [{"id": "u", "provider": "openai",
                                            "base_url": up.base_url}]}]}
        with GatewayThread(config) as gw:
            for model in ("fake", "up", "fake", "up"):
                assert b"200 OK" in start_stream_and_hang_up(gw, model)
            deadline = time.monotonic() + 5
            while any(in_flight(gw).values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert in_flight(gw) == {"f": 0, "u": 0}
            # The gateway stopped reading the abandoned upstream streams and closed them.
            deadline = time.monotonic() + 5
            while up.http.open_connections and time.monotonic() < deadline:
                time.sleep(0.05)
            assert up.http.open_connections == 0


def stream_events(gw: GatewayThread, model: str, rid: str) -> list[dict[str, object]]:
    body = json.dumps({"model": model, "stream": True, "messages": [
        {"role": "user", "content": "one two three four five"}]}).encode()
    req = urllib.request.Request(gw.url + "/v1/chat/completions", data=body, headers={
        "content-type": "application/json", "x-request-id": rid})
    with urllib.request.urlopen(req, timeout=20) as resp:
        frames = resp.read().split(b"\n\n")
    return [json.loads(f[6:]) for f in frames if f.startswith(b"data: {")]


def stored_record(gw: GatewayThread, rid: str) -> dict[str, object]:
    req = urllib.request.Request(gw.url + f"/api/requests/{rid}",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(req) as resp:
                found: dict[str, object] = json.loads(resp.read())["record"]
                return found
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_malformed_chunk_mid_stream_releases_the_deployment_and_leaves_a_record() -> None:
    up = FakeOpenAIUpstream()
    up.behaviour.garbage, up.behaviour.garbage_at = "choices-not-list", 2
    with ServerThread(up.http):
        config = {"admin_key": ADMIN, "models": [{"name": "up", "deployments": [
            {"id": "u", "provider": "openai", "base_url": up.base_url}]}]}
        with GatewayThread(config) as gw:
            events = stream_events(gw, "up", "garbled")
            error = events[-1]["error"]
            assert isinstance(error, dict) and error["type"] == "upstream_bad_response"
            assert in_flight(gw) == {"u": 0}
            record = stored_record(gw, "garbled")
            assert (record["status"], record["error_type"]) == ("error", "upstream_bad_response")


def test_a_fault_inside_the_gateway_mid_stream_ends_it_with_an_error_event_and_a_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from warden.providers.fake import FakeProvider

    original = FakeProvider.stream

    async def faulty(self: FakeProvider, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        chunks = original(self, call)
        yield await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
        raise RuntimeError("a bug, not the upstream's fault")

    monkeypatch.setattr(FakeProvider, "stream", faulty)
    config = {"admin_key": ADMIN, "models": [
        {"name": "fake", "deployments": [{"id": "f", "provider": "fake"}]}]}
    with GatewayThread(config) as gw:
        events = stream_events(gw, "fake", "faulty")
        error = events[-1]["error"]
        assert isinstance(error, dict) and error["code"] == "internal_error"
        record = stored_record(gw, "faulty")
        assert record["request_id"] in str(error["message"])
        assert "a bug" not in str(error["message"])
        assert (record["status"], record["error_type"]) == ("error", "server_error")
        assert in_flight(gw) == {"f": 0}
