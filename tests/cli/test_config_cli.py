"""The real ``warden`` console command, run as a subprocess: ``config check``, ``config schema``,
and ``serve`` (bind refusal, real HTTP, SIGTERM, SIGHUP reload)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "warden.yaml"

ONE_MODEL = """\
models:
  - name: echo
    deployments: [{id: echo-1, provider: fake}]
"""

TWO_MODELS = ONE_MODEL + """\
  - name: second
    deployments: [{id: second-1, provider: fake, params: {reply: from the second model}}]
"""


def warden_command() -> list[str]:
    """The installed console script next to this interpreter, else the one on PATH."""
    found = shutil.which("warden", path=str(Path(sys.executable).parent)) or shutil.which("warden")
    return [found] if found else [sys.executable, "-m", "warden"]


def clean_env() -> dict[str, str]:
    """The test's environment without anything that would change what warden reads."""
    drop = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "VLLM_BASE_URL", "OLLAMA_BASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("WARDEN_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def warden(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run ``warden ARGS`` to completion (subprocess.run kills it if it overruns)."""
    return subprocess.run([*warden_command(), *args], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(), check=False)


def write(tmp_path: Path, text: str, name: str = "warden.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll ``check`` until it is true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Gateway:
    """A ``warden serve`` process on a loopback port, its output going to files."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_dir: Path) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self._log_dir = log_dir

    @property
    def stdout(self) -> str:
        return (self._log_dir / "stdout.txt").read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return (self._log_dir / "stderr.txt").read_text(encoding="utf-8", errors="replace")

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return json.loads(resp.read())

    def model_names(self) -> list[str]:
        return [m["id"] for m in self.get_json("/v1/models")["data"]]

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"warden serve exited with {self.proc.returncode}:\n"
                                 f"{self.stdout}\n{self.stderr}")
        try:
            return bool(self.get_json("/healthz")["status"] == "ok")
        except (urllib.error.URLError, ConnectionError):
            return False

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0,
                             timeout=10)


@contextmanager
def serving(config: Path, tmp_path: Path) -> Iterator[Gateway]:
    """Start ``warden serve --config CONFIG`` on a free port; kill it whatever happens."""
    port = free_port()
    with (tmp_path / "stdout.txt").open("wb") as out, (tmp_path / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [*warden_command(), "serve", "--config", str(config), "--port", str(port),
             "--log-level", "warning"],
            stdout=out, stderr=err, env=clean_env(),
        )
    try:
        gateway = Gateway(proc, port, tmp_path)
        wait_for(gateway.healthy, "GET /healthz to answer")
        yield gateway
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# --- config check / schema --------------------------------------------------------------------


def test_config_check_accepts_a_valid_file_and_summarises_it(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_MODELS)
    result = warden("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: ok (2 model(s), 2 deployment(s))"
    assert result.stderr == ""


def test_config_check_accepts_the_example_file_without_its_secrets() -> None:
    result = warden("config", "check", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "ok (4 model(s), 5 deployment(s))" in result.stdout


def test_config_check_refuses_an_unknown_key_naming_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, ONE_MODEL + "    routing: {stratgy: round-robin}\n")
    result = warden("config", "check", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert str(path) in result.stderr
    assert "models[0].routing.stratgy: unknown key; did you mean 'strategy'?" in result.stderr


def test_config_check_validates_provider_params(tmp_path: Path) -> None:
    path = write(tmp_path, ONE_MODEL.replace("provider: fake", "provider: fake, "
                                             "params: {ttft_ms: -1}"))
    result = warden("config", "check", str(path))
    assert result.returncode == 1
    assert "models[0].deployments[0].params.ttft_ms" in result.stderr


def test_config_check_names_a_missing_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, ONE_MODEL.replace("provider: fake", "provider: fake, "
                                             "api_key: '${WARDEN_TEST_UNSET_KEY}'"))
    result = warden("config", "check", str(path))
    assert result.returncode == 1
    assert "models[0].deployments[0].api_key: environment variable WARDEN_TEST_UNSET_KEY " \
           "is not set" in result.stderr


def test_config_check_of_a_missing_file_fails(tmp_path: Path) -> None:
    result = warden("config", "check", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_config_schema_prints_the_json_schema_with_descriptions() -> None:
    result = warden("config", "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "models" in schema["properties"]
    assert schema["additionalProperties"] is False
    routing = schema["$defs"]["Routing"]["properties"]
    assert routing["strategy"]["description"]


# --- serve --------------------------------------------------------------------------------------


def test_serve_refuses_a_public_bind_without_keys_and_says_how_to_fix_it(tmp_path: Path) -> None:
    path = write(tmp_path, ONE_MODEL)
    # A gateway that started serving would never exit: the timeout would fail the test.
    result = warden("serve", "--config", str(path), "--host", "0.0.0.0", "--port", "0",
                    timeout=10)
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0 with no client keys" in result.stderr
    assert "Add keys:" in result.stderr and "--allow-public-without-keys" in result.stderr
    assert "listening" not in result.stdout


def test_serve_refuses_an_invalid_config_with_exit_status_2(tmp_path: Path) -> None:
    path = write(tmp_path, "modles: []\n")
    result = warden("serve", "--config", str(path), "--port", "0", timeout=10)
    assert result.returncode == 2
    assert "modles: unknown key; did you mean 'models'?" in result.stderr
    assert "listening" not in result.stdout


def test_serve_answers_over_http_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with serving(write(tmp_path, ONE_MODEL), tmp_path) as gw:
        assert gw.get_json("/healthz") == {"status": "ok"}
        with gw.client() as client:
            resp = client.chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "hello over real http"}])
        assert resp.choices[0].message.content == "hello over real http"
        assert resp.usage is not None and resp.usage.completion_tokens == 4

        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(10) == 0, gw.stderr
        assert "Traceback" not in gw.stderr


def test_sighup_reloads_the_config_and_a_broken_file_leaves_the_old_one_serving(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, ONE_MODEL)
    with serving(path, tmp_path) as gw:
        assert gw.model_names() == ["echo"]

        write(tmp_path, TWO_MODELS)
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "second" in gw.model_names(), "the reloaded model to appear")

        write(tmp_path, TWO_MODELS + "    routing: {stratgy: x}\n")
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP reload failed" in gw.stderr, "the refused reload to be logged")
        assert "models[1].routing.stratgy: unknown key" in gw.stderr
        assert gw.proc.poll() is None
        assert gw.model_names() == ["echo", "second"]
        with gw.client() as client:
            resp = client.chat.completions.create(
                model="second", messages=[{"role": "user", "content": "still there?"}])
        assert resp.choices[0].message.content == "from the second model"


BOMB = 'a0: &a0 ["lol"]\n' + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))


def test_config_check_refuses_hostile_files_with_a_message_not_a_traceback(
        tmp_path: Path) -> None:
    cases = {"bomb.yaml": (BOMB, "expand to more than"),
             "recursive.yaml": ("models: &a [*a]\n", "refers to its own anchor"),
             "deep.yaml": ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than")}
    for name, (text, message) in cases.items():
        start = time.monotonic()
        result = warden("config", "check", str(write(tmp_path, text, name)))
        assert time.monotonic() - start < 10, name
        assert result.returncode == 1, name
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_sighup_never_applies_a_file_that_removes_every_model(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_MODELS)
    with serving(path, tmp_path) as gw:
        path.write_text("")  # a truncated write
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP reload failed" in gw.stderr, "the refused reload to be logged")
        assert "every model" in gw.stderr and "force=true" in gw.stderr
        assert gw.model_names() == ["echo", "second"]
        assert gw.get_json("/readyz")["status"] == "ready"
