"""The ``json_validity`` scanner and its schema validator, on answers built from real records of
the shared data sets (BBQ questions as structured output) and on broken versions of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.guard.shared import DATA, needs_data
from warden.guard.base import ScanContext, Scanner
from warden.guard.scanners import json_schema as json_schema_module
from warden.guard.scanners.json_schema import JsonValidityScanner, validate

pytestmark = needs_data

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "context": {"type": "string", "minLength": 1},
        "question": {"type": "string"},
        "answers": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
        "label": {"type": "integer", "enum": [0, 1, 2]},
        "condition": {"$ref": "#/$defs/condition"},
        "polarity": {"anyOf": [{"type": "string", "enum": ["neg", "nonneg"]}, {"type": "null"}]},
    },
    "required": ["context", "question", "answers", "label", "condition"],
    "additionalProperties": False,
    "$defs": {"condition": {"type": "string", "enum": ["ambig", "disambig"]}},
}
STRUCTURED = {"type": "json_schema", "json_schema": {"name": "bbq", "strict": True, "schema": SCHEMA}}


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return JsonValidityScanner.from_options({})


@pytest.fixture(scope="module")
def answers() -> list[dict[str, Any]]:
    """Real BBQ records as the structured answers a model would give."""
    lines = (DATA / "fairness" / "bbq_Age.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    return [{"context": r["context"], "question": r["question"], "answers": [r["ans0"], r["ans1"], r["ans2"]],
             "label": r["label"], "condition": r["context_condition"], "polarity": r["question_polarity"]}
            for r in rows[:300]]


def ctx(response_format: dict[str, Any] | None) -> ScanContext:
    return ScanContext(where="output", response_format=response_format)


def test_valid_structured_answers_pass(scanner: Scanner, answers: list[dict[str, Any]]) -> None:
    for answer in answers:
        assert validate(answer, SCHEMA) == []
        assert scanner.scan(json.dumps(answer, ensure_ascii=False, indent=2), ctx(STRUCTURED)) == []


@pytest.mark.parametrize(("change", "error"), [
    (lambda a: a.pop("label"), "$: missing required property 'label'"),
    (lambda a: a.update(label="1"), "$.label: expected integer"),
    (lambda a: a.update(label=7), "$.label: not one of the enum values"),
    (lambda a: a.update(label=True), "$.label: expected integer"),
    (lambda a: a.update(extra=1), "$: property 'extra' is not allowed"),
    (lambda a: a["answers"].append("Unknown"), "$.answers: more than 3 items"),
    (lambda a: a["answers"].__setitem__(0, 5), "$.answers[0]: expected string"),
    (lambda a: a.update(condition="vague"), "$.condition: not one of the enum values"),
    (lambda a: a.update(polarity=3), "$.polarity: matches 0 of the anyOf schemas"),
    (lambda a: a.update(context=""), "$.context: fewer than 1 characters"),
])
def test_schema_violations_are_found(scanner: Scanner, answers: list[dict[str, Any]],
                                     change: Any, error: str) -> None:
    answer = json.loads(json.dumps(answers[0]))
    change(answer)
    assert error in validate(answer, SCHEMA)
    [found] = scanner.scan(json.dumps(answer), ctx(STRUCTURED))
    assert (found.type, found.score, found.has_span) == ("schema_violation", 1.0, False)


def test_text_that_is_not_json_is_invalid_json(scanner: Scanner, answers: list[dict[str, Any]]) -> None:
    whole = json.dumps(answers[1])
    for broken in (whole[: len(whole) // 2],            # cut off mid-stream
                   "Sure! Here is the JSON: " + whole,  # chatter around it
                   whole.replace('"', "'"),             # Python repr, not JSON
                   ""):
        for fmt in (STRUCTURED, {"type": "json_object"}):
            assert [d.type for d in scanner.scan(broken, ctx(fmt))] == ["invalid_json"]


def test_json_object_mode_needs_an_object(scanner: Scanner, answers: list[dict[str, Any]]) -> None:
    fmt = {"type": "json_object"}
    assert scanner.scan(json.dumps(answers[2]), ctx(fmt)) == []
    assert [d.type for d in scanner.scan(json.dumps([answers[2]]), ctx(fmt))] == ["invalid_json"]


def test_nothing_is_checked_unless_json_was_asked_for(scanner: Scanner) -> None:
    assert scanner.scan("plain words", ctx(None)) == []
    assert scanner.scan("plain words", ctx({"type": "text"})) == []
    # A json_schema request without a schema only needs JSON.
    assert scanner.scan('{"a": 1}', ctx({"type": "json_schema", "json_schema": {"name": "x"}})) == []
    # On a streamed answer it runs once, on the whole text.
    assert JsonValidityScanner.whole_text and JsonValidityScanner.directions == frozenset({"output"})


def test_a_code_fence_is_accepted_only_when_allowed(answers: list[dict[str, Any]]) -> None:
    fenced = "```json\n" + json.dumps(answers[3]) + "\n```"
    strict = JsonValidityScanner.from_options({})
    assert [d.type for d in strict.scan(fenced, ctx(STRUCTURED))] == ["invalid_json"]
    assert JsonValidityScanner.from_options({"allow_code_fence": True}).scan(fenced, ctx(STRUCTURED)) == []


def test_the_validator_handles_numbers_refs_and_bad_schemas() -> None:
    assert validate(3.0, {"type": "integer"}) == []
    assert validate(True, {"type": "number"}) == ["$: expected number"]
    assert validate(1, {"enum": [True]}) == ["$: not one of the enum values"]
    assert validate(5, {"type": "number", "minimum": 1, "maximum": 3}) == ["$: more than 3"]
    assert validate({"a": {"b": 1}}, {"properties": {"a": {"additionalProperties": {"type": "string"}}}}) \
        == ["$.a.b: expected string"]
    assert validate(1, {"$ref": "#/$defs/missing"}) == ["$: cannot resolve $ref '#/$defs/missing'"]
    loop = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    assert validate(1, loop) == ["$: schema too deep or not an object"]
    assert validate(1, {"oneOf": [{"type": "integer"}, {"type": "number"}]}) \
        == ["$: matches 2 of the oneOf schemas"]
    assert validate(1, {"allOf": [{"type": "integer"}, {"minimum": 2}]}) == ["$: fewer than 2"]
    assert validate("x", False) == ["$: not allowed"]
    assert validate("x", {"format": "email", "pattern": "^y"}) == []  # unsupported keywords are ignored


def test_the_module_registers_its_scanner() -> None:
    registered: list[type[Scanner]] = []
    json_schema_module.register_scanners(registered.append)
    assert registered == [JsonValidityScanner]
