"""The ``refusal`` scanner: refusals at the start of an answer score 1.0, later ones 0.5, and
real answers from the shared data sets (math solutions, task outputs) are not refusals."""

from __future__ import annotations

import pytest

from tests.guard.shared import DATA, jsonl, needs_data
from warden.guard.base import ScanContext, Scanner
from warden.guard.scanners import refusal as refusal_module
from warden.guard.scanners.refusal import RefusalScanner

pytestmark = needs_data
CTX = ScanContext(where="output")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return RefusalScanner.from_options({})


@pytest.mark.parametrize("refusal", [
    "I'm sorry, but I can't help with that.",
    "I can\u2019t assist with that request.",
    "As an AI language model, I don't have personal opinions.",
    "I apologize, but I cannot provide instructions for that.",
    "I must respectfully decline.",
    "Unfortunately, I am unable to share that information.",
    "That goes against my guidelines, so I won't write it.",
    "I'm not able to help with this one.",
    "I won't be able to fulfil this request.",
])
def test_refusals_at_the_start_of_an_answer_score_one(scanner: Scanner, refusal: str) -> None:
    [found] = scanner.scan(refusal + " Is there anything else I can do?", CTX)
    assert (found.type, found.score, found.start) == ("refusal", 1.0, 0)


def test_a_refusal_after_a_real_answer_scores_half(scanner: Scanner) -> None:
    solution = jsonl(DATA / "drift" / "gsm8k_test.jsonl")[0]["answer"]
    text = f"{solution}\n\n" + "More detail here. " * 15 + "I cannot provide financial advice, though."
    [found] = scanner.scan(text, CTX)
    assert found.score == 0.5
    assert text[found.start:found.end] == "I cannot provide"


def test_real_answers_are_not_refusals(scanner: Scanner) -> None:
    answers = [r["answer"] for r in jsonl(DATA / "drift" / "gsm8k_test.jsonl")]
    reading = DATA / "drift" / "t0_adversarial_qa_dbert_answer_the_following_q.jsonl"
    answers += [r["completion"] for r in jsonl(reading)]
    outputs: list[str] = []
    for name in ("benign/selfinstruct_user_oriented.jsonl", "drift/selfinstruct_seed_tasks.jsonl"):
        outputs += [i["output"] for r in jsonl(DATA / name) for i in r["instances"]]
    assert [a for a in answers if scanner.scan(a, CTX)] == []
    # One self-instruct output is itself a refusal (a task about private data).
    flagged = [o for o in outputs if scanner.scan(o, CTX)]
    assert len(flagged) == 1 and "I cannot answer this" in flagged[0]


@pytest.mark.parametrize("text", [
    "I can't help but notice how elegant this proof is.",
    "You can't use a list as a dictionary key because lists are mutable.",
    "The function cannot return None here.",
])
def test_ordinary_negations_are_not_refusals(scanner: Scanner, text: str) -> None:
    assert scanner.scan(text, CTX) == []


def test_extra_phrases_and_the_lead_window_are_options() -> None:
    scanner = RefusalScanner.from_options({"phrases": ["Request denied by policy"], "lead_chars": 0})
    [found] = scanner.scan("  request DENIED by policy.", CTX)
    assert (found.start, found.end, found.score) == (2, 26, 1.0)
    [found] = scanner.scan("Well. Request denied by policy.", CTX)
    assert found.score == 0.5
    assert RefusalScanner.directions == frozenset({"output"}) and RefusalScanner.whole_text


def test_the_module_registers_its_scanner() -> None:
    registered: list[type[Scanner]] = []
    refusal_module.register_scanners(registered.append)
    assert registered == [RefusalScanner]
