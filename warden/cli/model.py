"""``warden model keygen|sign|verify``: Ed25519 keys, signatures and checks of model files.

A signature covers the file's SHA-256 digest (64 lowercase hex characters, ASCII), so signing
and verifying hash the file once. FILE is a path, or a registered model name
(``smollm2-135m-instruct``), whose file and recorded checksum come from the registry. Needs the
``signing`` extra for keys and signatures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import click

from warden.errors import WardenError
from warden.lifecycle import signing
from warden.lifecycle.integrity import SignatureSpec, check, sha256_of
from warden.lifecycle.registry import resolve


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _model_file(file: str, sha256: str | None = None) -> tuple[Path, str | None]:
    """The path and recorded checksum of FILE (a path or a registered name)."""
    try:
        return resolve(file, sha256)
    except WardenError as exc:
        _fail(exc.message)


@click.group("model")
def model_group() -> None:
    """Sign model files and check them as the gateway does (SHA-256, Ed25519 signature)."""


@model_group.command("keygen")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the pair (created when missing).")
@click.option("--name", default="warden-model", show_default=True,
              help="File names: NAME.key (private) and NAME.pub (public).")
@click.option("--force", is_flag=True, help="Overwrite an existing pair.")
def keygen(out_dir: Path, name: str, force: bool) -> None:
    """Write a new Ed25519 key pair as PEM: NAME.key (private, mode 0600) and NAME.pub."""
    try:
        private, public = signing.generate()
    except signing.SigningError as exc:
        _fail(str(exc))
    out_dir.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    if not force and (key_path.exists() or pub_path.exists()):
        _fail(f"{key_path} or {pub_path} exists; give another --name, or --force to replace it")
    key_path.unlink(missing_ok=True)
    # Created with mode 0600: the private key is never readable by others, not even briefly.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub_path.write_bytes(public)
    click.echo(f"private key: {key_path}  (keep it secret: it signs models)")
    click.echo(f"public key:  {pub_path}  (the deployment's public_key)")


@model_group.command("sign")
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The Ed25519 private key (PEM), e.g. from 'warden model keygen'.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the signature (base64) to this file, e.g. FILE.sig.")
@click.argument("file")
def sign(key_path: Path, out_path: Path | None, file: str) -> None:
    """Sign the SHA-256 digest of FILE; print the digest and the base64 signature."""
    path, _ = _model_file(file)
    if not path.is_file():
        _fail(f"model file {path} does not exist")
    try:
        key = signing.load_private_key(key_path)
        digest = sha256_of(path)
        text = signing.encode(signing.sign(digest, key))
    except signing.SigningError as exc:
        _fail(str(exc))
    click.echo(f"sha256:    {digest}")
    click.echo(f"signature: {text}")
    if out_path is not None:
        out_path.write_text(text + "\n", encoding="ascii")
        click.echo(f"wrote {out_path}", err=True)


@model_group.command("verify")
@click.argument("file")
@click.option("--sha256", "expected", default=None,
              help="The recorded SHA-256 (default: the registry's, for a registered name).")
@click.option("--signature", default=None,
              help="The base64 signature, or the path of a .sig file.")
@click.option("--public-key", default=None, help="PEM text, or the path of a PEM file.")
def verify(file: str, expected: str | None, signature: str | None,
           public_key: str | None) -> None:
    """Check FILE as the gateway would; exit 0 when it passes, 1 with the reason when not.

    Without --sha256, a path needs a signature to be checked against."""
    if bool(signature) != bool(public_key):
        raise click.UsageError("--signature and --public-key go together")
    path, recorded = _model_file(file, expected)
    spec = SignatureSpec(signature, public_key) if signature and public_key else None
    outcome = check(path, recorded, "", spec, require_record=False)
    if outcome.result == "unrecorded":
        _fail(f"unrecorded: {path} has SHA-256 {outcome.sha256_found} and nothing to check it "
              "against: give --sha256, or --signature with --public-key")
    if not outcome.ok:
        _fail(f"{outcome.result}: {outcome.error}")
    checked = [f"SHA-256 {outcome.sha256_found}" + (" matches the record" if recorded else "")]
    if outcome.signature == "verified":
        checked.append("signature verified")
    click.echo(f"ok: {path}: {'; '.join(checked)}")
