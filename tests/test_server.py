"""Running the gateway as a process: graceful shutdown drains requests in flight."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
import uvicorn
import yaml

from tests.helpers import GatewayThread
from warden.config import parse_config
from warden.errors import ConfigError
from warden.listener import protocol_class
from warden.server import check_bind, is_loopback, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("gateway did not start listening")


def test_sigterm_lets_requests_in_flight_finish(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump({"server": {"drain_timeout_s": 10}, "models": [
        {"name": "slow", "deployments": [{"id": "f", "provider": "fake",
                                           "params": {"ttft_ms": 1500}}]}]}))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "warden", "serve", "--config", str(path), "--port", str(port),
         "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x",
                               max_retries=0, timeout=20)
        answers: list[str] = []

        def ask() -> None:
            resp = client.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": "still here"}])
            answers.append(resp.choices[0].message.content or "")

        worker = threading.Thread(target=ask)
        worker.start()
        time.sleep(0.5)  # the request is now waiting on the slow model
        proc.send_signal(signal.SIGTERM)
        worker.join(15)
        assert answers == ["still here"]
        assert proc.wait(15) == 0
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_loopback_detection() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_public_bind_needs_keys_or_an_explicit_override() -> None:
    bare = parse_config({}, env={})
    with pytest.raises(ConfigError, match=r"refusing to bind 0\.0\.0\.0"):
        check_bind(bare, "0.0.0.0", allow_public=False)
    assert "WARNING" in check_bind(bare, "0.0.0.0", allow_public=True)
    assert "loopback only" in check_bind(bare, "127.0.0.1", allow_public=False)
    keyed = parse_config({"keys": [{"key": "sk-123456789"}]}, env={})
    assert "1 in the config" in check_bind(keyed, "0.0.0.0", allow_public=False)
    assert "in the store" in check_bind(bare, "0.0.0.0", allow_public=False, stored_keys=True)


def bounded_gateway(httptools: bool, header_timeout_s: float = 0.5,
                    max_connections: int | None = None) -> GatewayThread:
    """A gateway under uvicorn with the listener's bounds set small."""
    gw = GatewayThread({"models": [{"name": "m", "deployments": [{"id": "f",
                                                                   "provider": "fake"}]}]})
    settings = uvicorn_config(gw.app, "127.0.0.1", 0, 1, "warning",
                              header_timeout_s=header_timeout_s, max_connections=max_connections)
    settings.http = protocol_class(httptools, header_timeout_s, max_connections)
    gw.server = uvicorn.Server(settings)
    return gw


def closed_after(sock: socket.socket, limit_s: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``sock``, and what it sent before."""
    start = time.monotonic()
    sock.settimeout(limit_s)
    got = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return time.monotonic() - start, got
        got += chunk


def healthz(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return int(closed_after(sock, 5)[1].split(b" ", 2)[1])


@pytest.mark.parametrize("httptools", [True, False], ids=["httptools", "h11"])
def test_a_half_sent_request_is_closed_after_the_header_timeout(httptools: bool) -> None:
    with bounded_gateway(httptools) as gw:
        half = socket.create_connection(("127.0.0.1", gw.port))
        idle = socket.create_connection(("127.0.0.1", gw.port))
        drip = socket.create_connection(("127.0.0.1", gw.port))
        try:
            half.sendall(b"GET /heal")
            for _ in range(2):  # a byte now and then does not keep a head alive
                drip.sendall(b"G" if _ == 0 else b"E")
                time.sleep(0.2)
            assert healthz(gw.port) == 200  # a whole request is served meanwhile
            for sock in (half, idle, drip):
                waited, sent = closed_after(sock, 5)
                assert waited < 1.5
                assert sent.startswith(b"HTTP/1.1 408")
        finally:
            for sock in (half, idle, drip):
                sock.close()


@pytest.mark.parametrize("httptools", [True, False], ids=["httptools", "h11"])
def test_a_kept_alive_connection_must_send_its_next_head_in_time(httptools: bool) -> None:
    with bounded_gateway(httptools) as gw, \
            socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)  # the first answer arrives whole
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        waited, sent = closed_after(sock, 5)
        assert sent.startswith(b"HTTP/1.1 200") and b'{"status":"ok"}HTTP/1.1 408' in sent
        assert waited < 1.5


def test_connections_past_the_bound_are_refused_and_the_rest_served() -> None:
    with bounded_gateway(True, header_timeout_s=30, max_connections=3) as gw:
        held = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
        try:
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", gw.port)) as extra:
                assert closed_after(extra, 5)[1].startswith(b"HTTP/1.1 503")
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert healthz(gw.port) == 200


def test_metrics_on_their_own_port_need_no_key_and_leave_the_main_port(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    port, metrics_port = free_port(), free_port()
    path.write_text(yaml.safe_dump({
        "admin_key": "own-port-admin-key",
        "server": {"metrics": {"port": metrics_port}},
        "models": [{"name": "m", "deployments": [{"id": "f", "provider": "fake"}]}]}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "warden", "serve", "--config", str(path), "--port", str(port),
         "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        wait_listening(metrics_port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
            assert b"warden_requests" in resp.read()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": "Bearer own-port-admin-key"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == 404
        info.value.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
