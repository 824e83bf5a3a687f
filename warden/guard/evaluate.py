"""How well a scanner does on labelled data (``warden guard eval``).

Two kinds of input, told apart by their content:

* **texts**: JSON Lines, one ``{"text": "...", "label": 0 or 1}`` per line, and optionally
  ``"system": "..."``, the system prompt the text was sent under (the scanner sees it as
  ``ScanContext.system_prompt``, as it would in the gateway). A text is predicted positive when
  the scanner returns any detection scored at or above the threshold; precision, recall, F1 and
  the false positive rate are over texts.
* **spans**: a Presidio-style JSON list of ``{"full_text": "...", "spans": [{"entity_type",
  "start_position", "end_position"}, ...]}``. Figures are over characters, whatever the entity
  type: a character is a true positive when it lies inside a gold span and inside a detection
  (scored at or above the threshold); the false positive rate is detected characters outside
  gold spans over all characters outside gold spans. Per gold entity type follow its share of
  characters found and of spans found (a span counts as found when at least half of its
  characters are); per detected type, the share of its detections that are right (at least
  half of the detection inside gold spans).

Latency is the time of each ``scan`` call, after one untimed call that loads what the scanner
loads lazily (an NER model).

``held_back`` splits any data set in a fixed way: a text is held back when the first four bytes
of the SHA-256 of its UTF-8 encoding, read as a big-endian number, are divisible by 3 (about a
third of the texts; equal texts always fall in the same part). Tune on the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeGuard

from warden.guard.base import Detection, ScanContext, Scanner
from warden.store.base import percentile

Part = Literal["all", "tuning", "held-back"]


class EvalInputError(Exception):
    """The input file cannot be read as labelled data; the message says where and why."""


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    label: int
    system: str | None = None  # the system prompt it was sent under


@dataclass(frozen=True, slots=True)
class GoldSpan:
    entity: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SpanText:
    text: str
    spans: tuple[GoldSpan, ...]


Examples = list[LabelledText] | list[SpanText]


@dataclass(slots=True)
class Report:
    """The figures of one evaluation; ``to_dict`` is the ``--json`` output."""

    kind: Literal["texts", "spans"]
    n: int
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    latency_ms: dict[str, float]
    counts: dict[str, int]
    entities: dict[str, dict[str, float]] = field(default_factory=dict)
    detected: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "false_positive_rate": self.false_positive_rate, "latency_ms": self.latency_ms,
            "n": self.n, "kind": self.kind, "counts": self.counts,
        }
        if self.kind == "spans":
            out["entities"] = self.entities
            out["detected"] = self.detected
        return out


def held_back(text: str) -> bool:
    """True for the texts of the held-back part (see the module docstring)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") % 3 == 0


def select(examples: Examples, part: Part) -> Examples:
    """The examples of one part of the split (``all`` keeps every one)."""
    if part == "all":
        return examples
    keep = part == "held-back"
    if examples and isinstance(examples[0], LabelledText):
        return [e for e in examples if isinstance(e, LabelledText) and held_back(e.text) == keep]
    return [e for e in examples if isinstance(e, SpanText) and held_back(e.text) == keep]


MAX_INPUT_BYTES = 256 * 1024 * 1024
MAX_LINE_CHARS = 1024 * 1024


def _read(path: str | Path) -> str:
    """The file's text: a regular file of at most ``MAX_INPUT_BYTES`` (a FIFO would block and a
    device such as /dev/zero would never end)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise EvalInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise EvalInputError(f"{path}: not a regular file (a directory, FIFO or device); save "
                             "the labelled data to a file and pass that")
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the stat
                raise EvalInputError(f"{path}: not a regular file")
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_INPUT_BYTES:
        raise EvalInputError(f"{path}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB; "
                             "split it and evaluate the parts")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def load(path: str | Path) -> Examples:
    """Read labelled texts (JSON Lines) or gold spans (a JSON list), whichever ``path`` holds.
    Raises EvalInputError, saying where and why, for anything that is not such a file."""
    raw = _read(path)
    examples = _load_spans(path, raw) if raw.lstrip().startswith("[") else _load_texts(path, raw)
    if not examples:
        raise EvalInputError(f"{path}: no examples in it")
    return examples


def _json(text: str, where: str, expected: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        line = f", line {exc.lineno}" if "line" not in where else ""
        raise EvalInputError(f"{where}{line}: not valid JSON ({exc.msg}); {expected}") from None
    except RecursionError:
        raise EvalInputError(f"{where}: JSON nested too deeply; {expected}") from None


def _is_int(value: object) -> TypeGuard[int]:
    return type(value) is int  # not bool, which JSON's true/false would pass as 1/0


def _load_texts(path: str | Path, raw: str) -> list[LabelledText]:
    out: list[LabelledText] = []
    shape = 'each line must be {"text": "...", "label": 0 or 1}'
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            raise EvalInputError(f"{path}, line {n}: longer than {MAX_LINE_CHARS} characters; "
                                 f"{shape}")
        item = _json(line, f"{path}, line {n}", shape)
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise EvalInputError(f'{path}, line {n}: needs a "text" string '
                                 '({"text": "...", "label": 0 or 1})')
        label = item.get("label")
        if not _is_int(label) or label not in (0, 1):
            raise EvalInputError(f'{path}, line {n}: "label" must be the number 0 or 1, not '
                                 f"{json.dumps(label)[:40]}")
        system = item.get("system")
        if system is not None and not isinstance(system, str):
            raise EvalInputError(f'{path}, line {n}: "system" must be a string (the system prompt) '
                                 f"or absent, not {type(system).__name__}")
        out.append(LabelledText(item["text"], int(label), system))
    return out


def _load_spans(path: str | Path, raw: str) -> list[SpanText]:
    items = _json(raw, str(path), 'expected a JSON list of {"full_text", "spans"}')
    if not isinstance(items, list):
        raise EvalInputError(f"{path}: expected a JSON list of texts with spans")
    out: list[SpanText] = []
    for i, item in enumerate(items):
        where = f"{path}, item {i}"
        if not isinstance(item, dict) or not isinstance(item.get("full_text"), str):
            raise EvalInputError(f'{where}: needs a "full_text" string and a "spans" list')
        text, spans = item["full_text"], item.get("spans")
        if not isinstance(spans, list):
            raise EvalInputError(f'{where}: needs a "spans" list (it may be empty)')
        gold = []
        for j, s in enumerate(spans):
            start, end = (s.get("start_position"), s.get("end_position")) if isinstance(s, dict) \
                else (None, None)
            if not (_is_int(start) and _is_int(end) and 0 <= start < end <= len(text)
                    and isinstance(s.get("entity_type"), str)):
                raise EvalInputError(
                    f'{where}, span {j}: needs "entity_type" and 0 <= "start_position" < '
                    f'"end_position" <= {len(text)} (the length of its full_text)')
            gold.append(GoldSpan(s["entity_type"], start, end))
        out.append(SpanText(text, tuple(gold)))
    return out


def evaluate(scanner: Scanner, examples: Examples, *, threshold: float = 0.5,
             ctx: ScanContext | None = None) -> Report:
    """Run ``scanner`` over ``examples`` and compute the figures (see the module docstring). A
    labelled text's system prompt, where it has one, replaces ``ctx``'s."""
    ctx = ctx or ScanContext(where="input")
    contexts = [replace(ctx, system_prompt=e.system)
                if isinstance(e, LabelledText) and e.system is not None else ctx
                for e in examples]  # fmt: skip
    scanner.scan(examples[0].text, contexts[0])  # warm-up: lazy loads are not latency
    found: list[list[Detection]] = []
    times_ms: list[float] = []
    texts = [e.text for e in examples]
    for text, c in zip(texts, contexts, strict=True):
        t0 = time.perf_counter()
        found.append(scanner.scan(text, c))
        times_ms.append((time.perf_counter() - t0) * 1000)
    return score(examples, found, times_ms, threshold=threshold)


def score(examples: Examples, found: Sequence[Sequence[Detection]], times_ms: Sequence[float], *,
          threshold: float = 0.5) -> Report:
    """The figures for the detections ``found`` in each example, which took ``times_ms``."""
    kept = [[d for d in detections if d.score >= threshold] for detections in found]
    latency = {"p50": round(_percentile(times_ms, 50), 3), "p95": round(_percentile(times_ms, 95), 3)}
    if isinstance(examples[0], LabelledText):
        return _texts_report([e for e in examples if isinstance(e, LabelledText)], kept, latency)
    return _spans_report([e for e in examples if isinstance(e, SpanText)], kept, latency)


def _texts_report(examples: Sequence[LabelledText], found: list[list[Detection]],
                  latency: dict[str, float]) -> Report:
    c = Counter(("t" if bool(f) == bool(e.label) else "f") + ("p" if f else "n")
                for e, f in zip(examples, found, strict=True))
    precision, recall, f1 = _prf(c["tp"], c["fp"], c["fn"])
    return Report("texts", len(examples), precision, recall, f1, _ratio(c["fp"], c["fp"] + c["tn"]),
                  latency, {k: c[k] for k in ("tp", "fp", "fn", "tn")})


def _spans_report(examples: Sequence[SpanText], found: list[list[Detection]],
                  latency: dict[str, float]) -> Report:
    tp = fp = fn = outside = 0
    gold_chars: Counter[str] = Counter()
    gold_hit: Counter[str] = Counter()
    gold_spans: Counter[str] = Counter()
    gold_found: Counter[str] = Counter()
    det_spans: Counter[str] = Counter()
    det_right: Counter[str] = Counter()
    for e, detections in zip(examples, found, strict=True):
        gold = bytearray(len(e.text))
        for g in e.spans:
            gold[g.start:g.end] = b"\x01" * (g.end - g.start)
        pred = bytearray(len(e.text))
        for d in detections:
            if d.start is not None and d.end is not None and d.end > d.start:
                pred[d.start:d.end] = b"\x01" * (d.end - d.start)
                inside = sum(gold[d.start:d.end])
                det_spans[d.type] += 1
                det_right[d.type] += 2 * inside >= d.end - d.start
        both = sum(g & p for g, p in zip(gold, pred, strict=True))
        n_gold, n_pred = sum(gold), sum(pred)
        tp, fp, fn = tp + both, fp + n_pred - both, fn + n_gold - both
        outside += len(e.text) - n_gold
        for g in e.spans:
            hit = sum(pred[g.start:g.end])
            gold_chars[g.entity] += g.end - g.start
            gold_hit[g.entity] += hit
            gold_spans[g.entity] += 1
            gold_found[g.entity] += 2 * hit >= g.end - g.start
    precision, recall, f1 = _prf(tp, fp, fn)
    entities = {k: {"spans": gold_spans[k], "span_recall": _ratio(gold_found[k], gold_spans[k]),
                    "char_recall": _ratio(gold_hit[k], gold_chars[k])}
                for k, _ in gold_chars.most_common()}
    detected = {k: {"spans": det_spans[k], "precision": _ratio(det_right[k], det_spans[k])}
                for k, _ in det_spans.most_common()}
    return Report("spans", len(examples), precision, recall, f1, _ratio(fp, outside), latency,
                  {"tp": tp, "fp": fp, "fn": fn, "outside": outside}, entities, detected)


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0


def _percentile(values: Sequence[float], q: int) -> float:
    return percentile(sorted(values), q / 100) if values else 0.0
