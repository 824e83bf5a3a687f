"""``json_validity``: answers to requests that asked for JSON (``response_format``) must be JSON.

- ``{"type": "json_object"}``: the answer must parse as a JSON object, else ``invalid_json``.
- ``{"type": "json_schema", "json_schema": {"schema": {...}}}``: it must parse (else
  ``invalid_json``) and validate against the schema (else ``schema_violation``).
- Any other ``response_format``, or none: nothing to check.

Detections are whole-text, score 1.0. :func:`validate` checks the JSON Schema subset that
structured outputs use — ``type``, ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
``minimum``/``maximum``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``
(``#/$defs/...``) — and ignores the other keywords.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import Field

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.hookspecs import hookimpl

_FENCE = re.compile(r"\s*```(?:json)?\s*\n(.*?)\n\s*```\s*", re.DOTALL)
_MAX_DEPTH = 64  # deeper schemas or $ref cycles are reported as violations, not followed


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}
    return name in kinds and isinstance(value, kinds[name])


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def validate(instance: Any, schema: Any, root: Any = None, path: str = "$", depth: int = 0) -> list[str]:
    """Where ``instance`` breaks ``schema``: a list of ``"<path>: <problem>"`` (empty when valid)."""
    root = schema if root is None else root
    if schema is True or schema is None:
        return []
    if schema is False:
        return [f"{path}: not allowed"]
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return [f"{path}: schema too deep or not an object"]
    if "$ref" in schema:
        target = _resolve(root, schema["$ref"])
        if target is None:
            return [f"{path}: cannot resolve $ref {schema['$ref']!r}"]
        return validate(instance, target, root, path, depth + 1)
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(instance, t) for t in names):
            return [f"{path}: expected {' or '.join(map(str, names))}"]
    if "enum" in schema and not any(_same(instance, e) for e in schema["enum"]):
        errors.append(f"{path}: not one of the enum values")
    if "const" in schema and not _same(instance, schema["const"]):
        errors.append(f"{path}: not the const value")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            passing = sum(not validate(instance, s, root, path, depth + 1) for s in schema[key])
            if passing == 0 or (key == "oneOf" and passing > 1):
                errors.append(f"{path}: matches {passing} of the {key} schemas")
    for sub in schema.get("allOf", ()):
        errors += validate(instance, sub, root, path, depth + 1)
    if isinstance(instance, dict):
        errors += _object(instance, schema, root, path, depth)
    elif isinstance(instance, list):
        items = schema.get("items")
        for i, item in enumerate(instance):
            errors += validate(item, items, root, f"{path}[{i}]", depth + 1) if items is not None else []
        errors += _bounds(len(instance), schema, "minItems", "maxItems", path, "items")
    elif isinstance(instance, str):
        errors += _bounds(len(instance), schema, "minLength", "maxLength", path, "characters")
    elif _is_type(instance, "number"):
        errors += _bounds(instance, schema, "minimum", "maximum", path, "")
    return errors


def _object(instance: dict[str, Any], schema: Mapping[str, Any], root: Any, path: str,
            depth: int) -> list[str]:
    errors = [f"{path}: missing required property {name!r}"
              for name in schema.get("required", ()) if name not in instance]
    properties: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for name, value in instance.items():
        if name in properties:
            errors += validate(value, properties[name], root, f"{path}.{name}", depth + 1)
        elif extra is False:
            errors.append(f"{path}: property {name!r} is not allowed")
        elif isinstance(extra, Mapping):
            errors += validate(value, extra, root, f"{path}.{name}", depth + 1)
    return errors


def _bounds(size: float, schema: Mapping[str, Any], low: str, high: str, path: str, unit: str) -> list[str]:
    errors = []
    if isinstance(schema.get(low), int | float) and size < schema[low]:
        errors.append(f"{path}: fewer than {schema[low]} {unit}".rstrip())
    if isinstance(schema.get(high), int | float) and size > schema[high]:
        errors.append(f"{path}: more than {schema[high]} {unit}".rstrip())
    return errors


def _resolve(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node = root
    for part in (p for p in ref[1:].split("/") if p):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


class JsonValidityOptions(ScannerOptions):
    allow_code_fence: bool = Field(
        False, description="Accept JSON wrapped in one Markdown code fence (```json ... ```).")


class JsonValidityScanner(Scanner):
    """Whether an answer is the JSON its request asked for."""

    name = "json_validity"
    directions = frozenset({"output"})
    whole_text = True  # a prefix of valid JSON is not valid JSON
    options_model = JsonValidityOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, JsonValidityOptions)
        self.opts = options

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        fmt = ctx.response_format or {}
        kind = fmt.get("type")
        if kind not in ("json_object", "json_schema"):
            return []
        if self.opts.allow_code_fence and (fence := _FENCE.fullmatch(text)):
            text = fence.group(1)
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [Detection("invalid_json", 1.0)]
        if kind == "json_object":
            return [] if isinstance(value, dict) else [Detection("invalid_json", 1.0)]
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if schema is not None and validate(value, schema):
            return [Detection("schema_violation", 1.0)]
        return []


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(JsonValidityScanner)
