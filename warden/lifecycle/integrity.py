"""Model integrity: a model file is loaded only when its SHA-256 matches the recorded one."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from warden.errors import WardenError

log = logging.getLogger("warden.integrity")


class ModelIntegrityError(WardenError):
    """A model artifact is missing, unrecorded or does not match its recorded checksum."""

    status = 500
    type = "server_error"
    code = "model_integrity"

    @property
    def retryable(self) -> bool:
        return False  # the same file fails the same way on every try


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str | None, what: str) -> str:
    """Check ``path`` against ``expected``; return the digest. Refuses a file with no record."""
    if not path.is_file():
        raise ModelIntegrityError(f"{what}: model file {path} does not exist.")
    actual = sha256_of(path)
    if expected is None:
        raise ModelIntegrityError(
            f"{what}: model file {path} has no recorded SHA-256, so its integrity cannot be "
            f"checked. If you trust this file, add  sha256: {actual}  to the deployment's params."
        )
    if actual.lower() != expected.lower():
        log.error("%s: checksum mismatch for %s: expected %s, found %s", what, path, expected, actual)
        raise ModelIntegrityError(
            f"{what}: refusing to load {path}: its SHA-256 is {actual} but {expected} was recorded. "
            "The file was changed or corrupted; reinstall it, or record the new checksum if the "
            "change is intended."
        )
    return actual
