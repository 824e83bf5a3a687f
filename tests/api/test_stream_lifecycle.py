"""A stream the client abandons releases its deployment and its upstream connection."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from tests.helpers import GatewayThread
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
