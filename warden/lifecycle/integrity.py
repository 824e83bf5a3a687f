"""Model integrity: a model file is loaded only when its SHA-256 matches the recorded one, and,
when the deployment carries a signature, when that signature of the digest verifies.

``check`` judges a file and returns an ``IntegrityOutcome`` (never raises for a bad file);
``verify`` raises ``ModelIntegrityError`` carrying the outcome. Providers that load model files
keep their last outcome in ``Provider.integrity``; the runtime records it (``IntegrityLog``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from warden.errors import ConfigError, WardenError
from warden.lifecycle import signing
from warden.visibility import Public

Result = Literal["ok", "checksum_mismatch", "signature_invalid", "unrecorded", "missing"]
RESULTS: tuple[Result, ...] = ("ok", "checksum_mismatch", "signature_invalid", "unrecorded",
                               "missing")
#: verified; invalid; configured but not checked (the checksum failed first); not configured.
SignatureState = Literal["verified", "invalid", "not_checked", "not_configured"]


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    """A configured signature: each value is the thing itself or the path of a file holding it."""

    signature: str      # base64 Ed25519 signature of the digest, or a path
    public_key: str     # PEM text, or a path to a PEM file


@dataclass(frozen=True, slots=True)
class IntegrityOutcome:
    """The result of checking one model file."""

    result: Result
    path: str
    sha256_expected: str | None
    sha256_found: str | None
    signature: SignatureState
    error: str | None = None
    checked_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ModelIntegrityError(WardenError):
    """A model artifact is missing, unrecorded, does not match its recorded checksum, or its
    signature does not verify."""

    status = 500
    type = "server_error"
    code = "model_integrity"

    def __init__(self, message: str, *, outcome: IntegrityOutcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome

    @property
    def retryable(self) -> bool:
        return False  # the same file fails the same way on every try


class SignedModelParams(BaseModel):
    """The ``signature`` and ``public_key`` params of a provider that loads a model file."""

    signature: Public[str | None] = Field(
        None, description="Ed25519 signature of the model's SHA-256 digest (its 64 hex "
        "characters): base64 text, or the path of a file holding it. Needs public_key.")
    public_key: Public[str | None] = Field(
        None, validate_default=True, description="The Ed25519 public key that checks "
        "signature: PEM text, or the path of a PEM file. Needs signature.")

    @field_validator("public_key")
    @classmethod
    def _both_or_neither(cls, value: str | None, info: ValidationInfo) -> str | None:
        signature = info.data.get("signature")
        if signature and not value:
            raise ValueError("signature is set but public_key is not: add public_key (the PEM "
                             "public key, or its file, from 'warden model keygen'), or remove "
                             "signature")
        if value and not signature:
            raise ValueError("public_key is set but signature is not: add signature (base64, or "
                             "the .sig file from 'warden model sign'), or remove public_key")
        return value

    def signature_spec(self, where: str) -> SignatureSpec | None:
        """The configured signature, if any; a ConfigError when it cannot be checked here."""
        if not self.signature or not self.public_key:
            return None
        if not signing.available():
            raise ConfigError(f"{where}: params.signature is set, and checking it needs the "
                              f"cryptography package: {signing.INSTALL_HINT}")
        return SignatureSpec(self.signature, self.public_key)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check(path: Path, expected: str | None, what: str, signature: SignatureSpec | None = None,
          *, require_record: bool = True) -> IntegrityOutcome:
    """Hash ``path`` and judge it (see ``judge``)."""
    if not path.is_file():
        return IntegrityOutcome(
            "missing", str(path), expected, None,
            "not_checked" if signature else "not_configured",
            error=f"{_at(what)}model file {path} does not exist.")
    return judge(path, sha256_of(path), expected, what, signature, require_record=require_record)


def judge(path: Path, found: str, expected: str | None, what: str,
          signature: SignatureSpec | None = None, *,
          require_record: bool = True) -> IntegrityOutcome:
    """The outcome for a file whose digest is ``found``: the checksum first, then the signature.

    A file with no recorded checksum is refused ("unrecorded"), unless ``require_record`` is
    false and a signature vouches for the digest (what ``warden model verify`` accepts)."""
    at = _at(what)
    unchecked: SignatureState = "not_checked" if signature else "not_configured"

    def outcome(result: Result, sig: SignatureState, error: str | None = None) -> IntegrityOutcome:
        return IntegrityOutcome(result, str(path), expected, found, sig, error=error)

    if expected is None and (require_record or signature is None):
        return outcome("unrecorded", unchecked, (
            f"{at}model file {path} has no recorded SHA-256, so its integrity cannot be "
            f"checked. If you trust this file, add  sha256: {found}  to the deployment's params."))
    if expected is not None and found != expected.lower():
        return outcome("checksum_mismatch", unchecked, (
            f"{at}refusing to load {path}: its SHA-256 is {found} but {expected} was recorded. "
            "The file was changed or corrupted; reinstall it, or record the new checksum if the "
            "change is intended."))
    if signature is None:
        return outcome("ok", "not_configured")
    try:
        key = signing.load_public_key(signature.public_key)
        raw = signing.load_signature(signature.signature)
        good = signing.verify(found, raw, key)
    except signing.SigningError as exc:
        return outcome("signature_invalid", "invalid",
                       f"{at}refusing to load {path}: its signature cannot be checked: {exc}.")
    if not good:
        return outcome("signature_invalid", "invalid", (
            f"{at}refusing to load {path}: its signature does not verify with the configured "
            f"public_key (SHA-256 {found}). The signature was made for another file or with "
            "another key: sign this file with  warden model sign --key PRIVATE_KEY FILE  or "
            "configure the public key of the key that signed it."))
    return outcome("ok", "verified")


def verify(path: Path, expected: str | None, what: str,
           signature: SignatureSpec | None = None) -> IntegrityOutcome:
    """Check ``path``; return the outcome, or raise ModelIntegrityError carrying it."""
    outcome = check(path, expected, what, signature)
    if not outcome.ok:
        raise ModelIntegrityError(outcome.error or outcome.result, outcome=outcome)
    return outcome


def _at(what: str) -> str:
    return f"{what}: " if what else ""
