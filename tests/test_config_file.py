"""Hostile or broken config files: each gets a clear ConfigError, in bounded time and memory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from warden.config import load_config
from warden.config_file import MAX_ALIASES, MAX_BYTES, MAX_DEPTH
from warden.errors import ConfigError


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    return str(info.value)


def write(tmp_path: Path, data: str | bytes) -> Path:
    path = tmp_path / "warden.yaml"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" file: 9 levels of 9 aliases each, 9**9 values once expanded."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb())
    assert path.stat().st_size < 600
    start = time.monotonic()
    message = refused(path)
    assert time.monotonic() - start < 2
    assert "aliases" in message and "expand to more than" in message


def test_more_aliases_than_the_bound_are_refused(tmp_path: Path) -> None:
    items = "\n".join("  - *x" for _ in range(MAX_ALIASES + 1))
    message = refused(write(tmp_path, f"base: &x 1\nlist:\n{items}\n"))
    assert f"more than {MAX_ALIASES} aliases" in message


def test_a_few_aliases_for_shared_settings_still_work(tmp_path: Path) -> None:
    text = """
models:
  - name: a
    routing: &routing {retries: 1}
    deployments: [{id: f, provider: fake}]
  - name: b
    routing: *routing
    deployments: [{id: f, provider: fake}]
"""
    config = load_config(write(tmp_path, text), env={})
    assert [m.routing.retries for m in config.models] == [1, 1]


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [[1, *a]]\n"])
def test_a_recursive_anchor_is_refused(tmp_path: Path, text: str) -> None:
    assert "refers to its own anchor" in refused(write(tmp_path, text))


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    depth = 5000  # deeper than Python's recursion limit
    message = refused(write(tmp_path, "a: " + "[" * depth + "]" * depth + "\n"))
    assert f"nested more than {MAX_DEPTH} levels" in message


def test_a_file_past_the_size_bound_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * MAX_BYTES + "\n")
    assert "larger than" in refused(path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    message = refused(write(tmp_path, b"models: []\nname: caf\xe9\n"))
    assert "not UTF-8" in message and "offset 20" in message


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    assert "binary file" in refused(write(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00"))


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "is a directory" in refused(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "warden.yaml"
    os.mkfifo(fifo)
    start = time.monotonic()
    assert "not a regular file" in refused(fifo)
    assert time.monotonic() - start < 2


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "models: [\n")
    message = refused(path)
    assert str(path) in message and "not valid YAML" in message
