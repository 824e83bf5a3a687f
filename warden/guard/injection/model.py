"""The shipped model: a hashed n-gram classifier, a bank of known attacks, and the combiner.

All three live in one artifact, ``injection.json.gz`` beside this module, written by
``scripts/train_injection.py``: the classifier's weights (int8, one per hash bucket), the bank's
sampled word-trigram hashes (no text), and the logistic combiner that turns the layers' signals
into one calibrated probability; and the second stage's weights (``semantic.Semantic``: a
logistic regression over sentence embeddings, its band and its stacking combiner). Inference is
plain Python: no numpy, no scikit-learn.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.guard.injection import context
from warden.guard.injection.semantic import Semantic

ARTIFACT = Path(__file__).with_name("injection.json.gz")
FORMAT = 3
SIGNALS = (
    "classifier", "similarity", "override", "roleplay", "extraction", "delimiter", "obfuscation",
    *context.SIGNALS,
)  # fmt: skip


def _pack(values: array[Any]) -> str:
    if sys.byteorder == "big":  # the file is little-endian everywhere
        values = array(values.typecode, values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def _unpack(typecode: str, data: str) -> array[Any]:
    out = array(typecode)
    if typecode == "I" and out.itemsize != 4:  # pragma: no cover - no platform CPython supports
        raise ValueError("the injection model needs array('I') of 32-bit integers")
    out.frombytes(base64.b64decode(data))
    if sys.byteorder == "big":
        out.byteswap()
    return out


class Linear:
    """Logistic regression over hashed buckets; weights quantised to int8 times ``scale``."""

    def __init__(self, weights: array[int], scale: float, bias: float, bits: int) -> None:
        if len(weights) != 1 << bits:
            raise ValueError(f"the classifier has {len(weights)} weights, expected {1 << bits}")
        self.weights, self.scale, self.bias, self.bits = weights, scale, bias, bits

    def logit(self, buckets: set[int]) -> float:
        if not buckets:
            return self.bias
        w = self.weights
        return self.bias + self.scale * sum(w[i] for i in buckets) / math.sqrt(len(buckets))


class Bank:
    """Known attacks as sets of sampled word-trigram hashes, searched through an inverted index.

    ``score`` is the largest share of the input's shingles found in any one known attack, the
    input's count floored at ``floor`` so that a short input cannot match on two shingles; one
    shingle in common is chance, and scores 0.
    """

    def __init__(self, entries: Sequence[Iterable[int]], kinds: Sequence[str], floor: int) -> None:
        self.entries = [sorted(set(e)) for e in entries]
        self.kinds, self.floor = list(kinds), floor
        index: dict[int, list[int]] = {}
        for n, entry in enumerate(self.entries):
            for h in entry:
                index.setdefault(h, []).append(n)
        self.index = {h: tuple(ids) for h, ids in index.items()}

    def __len__(self) -> int:
        return len(self.kinds)

    def score(self, shingles: set[int], exclude: int = -1) -> tuple[float, str]:
        """(similarity in [0, 1], kind of the closest attack); ``exclude`` leaves one entry out."""
        counts: dict[int, int] = {}
        for h in shingles:
            for n in self.index.get(h, ()):
                counts[n] = counts.get(n, 0) + 1
        counts.pop(exclude, None)
        if not counts:
            return 0.0, ""
        best = max(counts, key=counts.__getitem__)
        if counts[best] < 2:
            return 0.0, ""
        return counts[best] / max(len(shingles), self.floor), self.kinds[best]


@dataclass(slots=True, frozen=True)
class Combiner:
    """Logistic regression over the layers' signals: the scores named in ``SIGNALS`` (the context
    signals among them, 0 without a system prompt) and one indicator per heuristic pattern
    (``pattern:<name>``), which corrects the family's weight for that pattern where the data had
    something to say about it."""

    coef: Mapping[str, float]
    intercept: float

    def probability(self, signals: Mapping[str, float]) -> float:
        coef = self.coef
        z = self.intercept + sum(coef.get(k, 0.0) * v for k, v in signals.items())
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


@dataclass(slots=True, frozen=True)
class Model:
    """Everything the scanner needs, loaded once per process."""

    linear: Linear
    bank: Bank
    combiner: Combiner
    sample: int  # the bank keeps word trigrams whose hash is divisible by this
    threshold: float  # the score from which a policy should act (docs/guardrails-injection.md)
    meta: Mapping[str, Any]
    semantic: Semantic | None = None  # the second stage (None: the first stage decides alone)


def save(model: Model, path: Path) -> None:
    """Write ``model`` where ``load`` reads it."""
    flat = array("I", [h for entry in model.bank.entries for h in entry])
    doc = {
        "format": FORMAT,
        "meta": dict(model.meta),
        "threshold": model.threshold,
        "classifier": {
            "bits": model.linear.bits,
            "scale": model.linear.scale,
            "bias": model.linear.bias,
            "weights": _pack(model.linear.weights),
        },
        "bank": {
            "sample": model.sample,
            "floor": model.bank.floor,
            "sizes": [len(e) for e in model.bank.entries],
            "kinds": "".join("j" if k == "jailbreak" else "i" for k in model.bank.kinds),
            "hashes": _pack(flat),
        },
        "combiner": {"coef": dict(model.combiner.coef), "intercept": model.combiner.intercept},
    }
    if model.semantic is not None:
        doc["semantic"] = _semantic_doc(model.semantic)
    # mtime=0 keeps the file byte-identical between runs of the training script.
    path.write_bytes(gzip.compress(json.dumps(doc, indent=1).encode("utf-8"), mtime=0))


def _semantic_doc(s: Semantic) -> dict[str, Any]:
    return {"weights": _pack(array("f", s.weights)), "bias": s.bias, "band": [s.low, s.high],
            "stack": dict(s.stack), "intercept": s.intercept}  # fmt: skip


def _semantic(doc: Mapping[str, Any] | None) -> Semantic | None:
    if doc is None:
        return None
    low, high = doc["band"]
    return Semantic(tuple(_unpack("f", doc["weights"])), float(doc["bias"]), float(low), float(high),
                    {k: float(v) for k, v in doc["stack"].items()}, float(doc["intercept"]))  # fmt: skip


def load(path: Path = ARTIFACT) -> Model:
    """Read an artifact written by ``save``."""
    doc = json.loads(gzip.decompress(path.read_bytes()))
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: artifact format {doc.get('format')}, expected {FORMAT}; "
                         "rerun scripts/train_injection.py")  # fmt: skip
    c, b = doc["classifier"], doc["bank"]
    flat = _unpack("I", b["hashes"])
    entries, at = [], 0
    for size in b["sizes"]:
        entries.append(flat[at : at + size])
        at += size
    kinds = ["jailbreak" if k == "j" else "prompt_injection" for k in b["kinds"]]
    return Model(
        linear=Linear(_unpack("b", c["weights"]), float(c["scale"]), float(c["bias"]), int(c["bits"])),
        bank=Bank(entries, kinds, int(b["floor"])),
        combiner=Combiner(dict(doc["combiner"]["coef"]), float(doc["combiner"]["intercept"])),
        sample=int(b["sample"]),
        threshold=float(doc["threshold"]),
        meta=doc["meta"],
        semantic=_semantic(doc.get("semantic")),
    )
