"""Hostile config files for POST /api/admin/reload: empty, truncated, an alias bomb, recursive
anchors, binary bytes, a huge file, deep nesting, and the good file cut or corrupted anywhere.
Each reload answers within a few seconds with 200 or a clear 400 (never a 5xx, never a hang);
a refused one leaves the gateway serving with its old config, and requests still leave their
records, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import (
    ADMIN,
    EXAMPLES,
    MODELS,
    Client,
    Exchange,
    Gate,
    check_answer,
    shorten,
)
from tests.fuzz.strategies import encode
from warden.config import load_config

RELOAD_S = 10.0
"""How long one reload may take (the 4 MB files take about a second to parse)."""
BOMB_S = 2.0
"""How long refusing an alias bomb may take: expanding this small one takes seconds, a real one
(9 levels) hours, so a parser that expands it fails here instead of hanging."""


def _alias_bomb(levels: int, width: int) -> bytes:
    # Small on purpose (width ** levels leaves): an expansion still finishes within the test
    # when nothing guards against it, while a guard refuses it at once.
    lines = ["a0: &a0 [x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    lines.append(f"models: *a{levels}")
    return "\n".join(lines).encode()


HOSTILE_CONFIGS = {
    "empty file": b"",
    "only whitespace": b"  \n\n",
    "only a comment": b"# nothing here\n",
    "null document": b"null\n",
    "a list": b"- 1\n- 2\n",
    "a string": b"just text\n",
    "truncated mapping": b"models:\n  - name: echo\n    deployments: [{id: f, provider",
    "bad indentation": b"models:\n- name: a\n   deployments: x\n  y: z\n",
    "alias bomb": _alias_bomb(6, 9),
    "alias bomb in a string field": _alias_bomb(5, 9).replace(b"models:", b"admin_key:"),
    "recursive anchor": b"models: &m [*m]\n",
    "recursive mapping": b"server: &s {x: *s}\n",
    "merge key loop": b"a: &a {<<: *a}\n",
    "binary bytes": bytes(range(256)) * 4,
    "nul bytes": b"models:\x00\n  - \x00\n",
    "lone surrogate bytes": b"admin_key: \xed\xa0\x80\n",
    "utf-16": "models: []\n".encode("utf-16"),
    "huge file": b"# " + b"x" * (4 * 1024 * 1024) + b"\nmodels: [\n",
    "many keys": b"".join(b"k%d: %d\n" % (i, i) for i in range(5000)),
    "deep flow nesting": b"models: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep block nesting": b"".join(b"  " * i + b"a:\n" for i in range(2000)),
    "python tag": b"models: !!python/object/apply:os.system ['true']\n",
    "env without a value": b"admin_key: ${WARDEN_FUZZ_UNSET_VARIABLE}\nmodels: []\n",
    "nan in a number": b"server: {max_body_bytes: .nan}\n",
    "huge number": b"server: {max_body_bytes: 1" + b"0" * 5000 + b"}\n",
}


def _reload(gate: Gate, config: bytes, note: str, limit: float = RELOAD_S) -> Exchange:
    gate.config_path.write_bytes(config)
    ex = Exchange("POST", "/api/admin/reload", note)
    client = Client(gate.gw.port, timeout=limit)
    try:
        client.send(ex, b"", {"authorization": f"Bearer {ADMIN}"})
    except AssertionError:
        _wait_until_serving(gate)  # a reload that hangs fails its own test, not the next ones
        raise
    finally:
        client.close()
    check_answer(ex, upstream=False)
    assert ex.status in (200, 400), f"a reload answered neither 200 nor 400\n{ex.describe()}"
    return ex


def _wait_until_serving(gate: Gate) -> None:
    health = Exchange("GET", "/healthz", "nothing")
    client = Client(gate.gw.port, timeout=120)
    try:
        client.send(health, None, {})
    finally:
        client.close()


def _still_serves(gate: Gate, what: str) -> None:
    """The old config is still the running one: every model listed and answering."""
    ex = gate.send("GET", "/v1/models", f"after {what}", admin=True)
    listed = {m["id"] for m in json.loads(ex.body)["data"]}
    assert listed == set(MODELS), f"after {what}, /v1/models lists {sorted(listed)}"
    data = encode({"model": "echo", "messages": [{"role": "user", "content": "still here"}]})
    ok = gate.send("POST", "/v1/chat/completions", f"a plain request after {what}", data,
                   {"content-type": "application/json"})
    assert ok.status == 200, f"after {what}, the gateway no longer serves\n{ok.describe()}"


@pytest.fixture
def good_config(gate: Gate) -> Iterator[bytes]:
    """The gateway's own config file; put back after the test, and swapped in directly (a
    config taken by mistake may have no admin key left to reload with)."""
    original = gate.config_path.read_bytes()
    yield original
    _restore(gate, original)


def _restore(gate: Gate, original: bytes) -> None:
    gate.config_path.write_bytes(original)
    gate.gw.call(gate.gw.app.state.holder.swap(load_config(gate.config_path)))


@pytest.mark.parametrize("name", list(HOSTILE_CONFIGS))
def test_a_hostile_config_is_refused_and_the_old_one_keeps_serving(
        gate: Gate, good_config: bytes, name: str) -> None:
    ex = _reload(gate, HOSTILE_CONFIGS[name], f"config file: {name} "
                 f"{shorten(HOSTILE_CONFIGS[name], 200)}", BOMB_S if "bomb" in name else RELOAD_S)
    assert ex.status == 400, f"the {name} config was taken\n{ex.describe()}"
    _still_serves(gate, f"reloading a config file with {name}")
    gate.settle()


def test_a_good_config_cut_or_corrupted_anywhere_is_refused_or_taken_whole(
        gate: Gate, good_config: bytes) -> None:
    @settings(max_examples=max(10, EXAMPLES // 4), deadline=None, derandomize=True,
              database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cut=st.integers(0, len(good_config)), junk=st.binary(max_size=8),
           keep_tail=st.booleans())
    def corrupt(cut: int, junk: bytes, keep_tail: bool) -> None:
        config = good_config[:cut] + junk + (good_config[cut:] if keep_tail else b"")
        ex = _reload(gate, config, f"config file cut at {cut} with {junk!r} "
                     f"{'inserted' if keep_tail else 'appended'}")
        if ex.status == 200:  # still a valid config (of fewer models, perhaps): put it back
            _restore(gate, good_config)
        else:
            _still_serves(gate, f"a config cut at {cut} with {junk!r}")

    corrupt()
    gate.settle()
