"""``warden keys create|list|revoke``, the real console command against a SQLite store in
tmp_path, and a running gateway on the same store that follows what it does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import yaml

from tests.helpers import GatewayThread


def warden(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    found = shutil.which("warden", path=str(Path(sys.executable).parent)) or shutil.which("warden")
    command = [found] if found else [sys.executable, "-m", "warden"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def printed(name: str, stdout: str) -> str:
    """The value of a ``name: value`` line of ``warden keys create``."""
    found = re.search(rf"^{name}:\s+(\S+)$", stdout, re.M)
    assert found, stdout
    return found.group(1)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path}/warden.db"},
        "models": [{"name": n, "deployments": [{"id": "f", "provider": "fake"}]}
                   for n in ("echo", "other")],
    }))
    return path


def test_create_list_and_revoke(config: Path) -> None:
    made = warden("keys", "create", "--name", "search", "--role", "viewer", "--team", "ads",
                  "--models", "echo,other", "--tag", "cost_center=cc-1", "--payloads", "none",
                  "--config", str(config))
    assert made.returncode == 0, made.stderr
    key_id, token = printed("id", made.stdout), printed("token", made.stdout)
    assert re.fullmatch(r"key_[0-9a-f]{16}", key_id)
    assert re.fullmatch(rf"wk-{key_id[4:]}-[0-9a-f]{{48}}", token)
    assert "not shown again" in made.stderr

    listed = warden("keys", "list", "--config", str(config))
    assert listed.returncode == 0 and token not in listed.stdout
    assert re.search(rf"^{key_id}\s+search\s+viewer\s+ads\s+echo,other\s", listed.stdout, re.M)

    as_json = json.loads(warden("keys", "list", "--json", "--config", str(config)).stdout)
    assert [(k["id"], k["role"], k["team"], k["models"], k["tags"], k["payloads"],
             k["revoked_at"]) for k in as_json] == [
        (key_id, "viewer", "ads", ["echo", "other"], {"cost_center": "cc-1"}, "none", None)]
    assert token not in json.dumps(as_json)

    revoked = warden("keys", "revoke", key_id, "--config", str(config))
    assert revoked.returncode == 0 and f"revoked {key_id} (search)" in revoked.stdout
    (entry,) = json.loads(warden("keys", "list", "--json", "--config", str(config)).stdout)
    assert entry["revoked_at"] is not None


def test_mistakes_exit_with_a_message(config: Path) -> None:
    unknown = warden("keys", "revoke", "key_0000000000000000", "--config", str(config))
    assert unknown.returncode == 1 and "No API key has id" in unknown.stderr
    bad_role = warden("keys", "create", "--name", "x", "--role", "root", "--config", str(config))
    assert bad_role.returncode == 2 and "root" in bad_role.stderr
    for name in ("two\nlines", "../../etc/passwd", "a/b", "x" * 100_000):
        bad_name = warden("keys", "create", "--name", name, "--config", str(config))
        assert bad_name.returncode == 2 and "--name" in bad_name.stderr
        assert "Traceback" not in bad_name.stderr
    bad_team = warden("keys", "create", "--name", "x", "--team", "a\nb", "--config", str(config))
    assert bad_team.returncode == 2 and "--team" in bad_team.stderr
    assert json.loads(warden("keys", "list", "--json", "--config", str(config)).stdout) == []
    missing = warden("keys", "list", "--config", str(config.parent / "nope.yaml"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_a_running_gateway_follows_the_cli(config: Path) -> None:
    made = warden("keys", "create", "--name", "app", "--models", "echo", "--config", str(config))
    key_id, token = printed("id", made.stdout), printed("token", made.stdout)
    with GatewayThread(yaml.safe_load(config.read_text())) as gw:
        client = gw.client(api_key=token, max_retries=0)
        msg = [{"role": "user", "content": "hi"}]
        assert client.chat.completions.create(model="echo", messages=msg).choices
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="other", messages=msg)
        assert warden("keys", "revoke", key_id, "--config", str(config)).returncode == 0
        deadline = time.monotonic() + 5  # gateways check the store every 2 seconds
        while True:
            try:
                client.chat.completions.create(model="echo", messages=msg)
            except openai.AuthenticationError as exc:
                assert "revoked" in str(exc)
                break
            assert time.monotonic() < deadline, "the gateway still accepts a revoked key"
            time.sleep(0.1)
