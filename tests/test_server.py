"""Running the gateway as a process: graceful shutdown drains requests in flight."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
import yaml

from warden.config import parse_config
from warden.errors import ConfigError
from warden.server import check_bind, is_loopback


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
