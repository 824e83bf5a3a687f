"""Ed25519 signatures of model files, with the ``cryptography`` package (the ``signing`` extra).

What is signed is the file's SHA-256 digest, written as its 64 lowercase hex characters in
ASCII: like cosign's digest signing, the file is hashed once and the signature binds that
digest, so checking a signature costs nothing beyond the checksum already computed.

Signatures travel as base64 text (88 characters); a signature file holds that text, or the 64
raw bytes that ``openssl pkeyutl -sign -rawin`` writes. Keys are PEM: PKCS#8 for the private
key, SubjectPublicKeyInfo for the public one (what ``openssl genpkey -algorithm ed25519``
and ``warden model keygen`` write).
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

INSTALL_HINT = "install warden[signing] (pip install 'warden[signing]')"
SIGNATURE_BYTES = 64
_DIGEST = re.compile(r"[0-9a-f]{64}")


class SigningError(Exception):
    """A key or a signature cannot be read or used; the message says what to do."""


def available() -> bool:
    """Whether the ``cryptography`` package is installed (it is not imported here)."""
    return importlib.util.find_spec("cryptography") is not None


def _require() -> None:
    if not available():
        raise SigningError(f"model signatures need the cryptography package: {INSTALL_HINT}")


def message(digest: str) -> bytes:
    """The bytes a signature covers: the SHA-256 digest as 64 lowercase hex characters."""
    text = digest.lower()
    if not _DIGEST.fullmatch(text):
        raise SigningError(f"{digest!r} is not a SHA-256 digest (64 hex characters)")
    return text.encode("ascii")


def _pem_or_file(source: str, what: str) -> bytes:
    """PEM text as given, or the contents of the file it names."""
    if source.lstrip().startswith("-----BEGIN"):
        return source.strip().encode("ascii") + b"\n"
    path = Path(source).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read the {what} {path}: {exc.strerror or exc}; give PEM text "
                           "or the path of a PEM file") from None


def load_public_key(source: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text or a PEM file."""
    _require()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = _pem_or_file(source, "public key")
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise SigningError("the public key is not a PEM public key (-----BEGIN PUBLIC KEY-----); "
                           "use the .pub file written by 'warden model keygen'") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"the public key is a {type(key).__name__}, not an Ed25519 key; make an "
                           "Ed25519 pair with 'warden model keygen'")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key from a PEM file."""
    _require()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _pem_or_file(str(path), "private key")
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningError(f"the private key {path} is encrypted; give an unencrypted PEM key "
                           "(as 'warden model keygen' writes)") from None
    except ValueError:
        raise SigningError(f"{path} is not a PEM private key (-----BEGIN PRIVATE KEY-----)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path} holds a {type(key).__name__}, not an Ed25519 key; make an "
                           "Ed25519 pair with 'warden model keygen'")
    return key


def _decode(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == SIGNATURE_BYTES else None


def load_signature(source: str) -> bytes:
    """The 64 signature bytes from base64 text, or from a file holding base64 text or raw bytes."""
    raw = _decode(source)
    if raw is not None:
        return raw
    path = Path(source).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(
            f"the signature is neither base64 Ed25519 signature text nor a readable file "
            f"({path}: {exc.strerror or exc}); sign the model with 'warden model sign --key KEY "
            "FILE --out FILE.sig'") from None
    raw = _decode(data.decode("ascii", errors="replace"))
    if raw is not None:
        return raw
    if len(data) == SIGNATURE_BYTES:
        return data
    raise SigningError(f"the signature file {path} holds neither a base64 Ed25519 signature nor "
                       f"{SIGNATURE_BYTES} raw bytes; sign the model again with 'warden model sign'")


def sign(digest: str, key: Ed25519PrivateKey) -> bytes:
    """The Ed25519 signature of a SHA-256 digest."""
    return key.sign(message(digest))


def verify(digest: str, signature: bytes, key: Ed25519PublicKey) -> bool:
    """Whether ``signature`` is ``key``'s signature of the digest."""
    _require()
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, message(digest))
    except InvalidSignature:
        return False
    return True


def generate() -> tuple[bytes, bytes]:
    """A new Ed25519 pair as PEM: (private key, unencrypted PKCS#8; public key, SPKI)."""
    _require()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def encode(signature: bytes) -> str:
    """A signature as base64 text (what configs and .sig files hold)."""
    return base64.b64encode(signature).decode("ascii")
