"""Policies compiled for a runtime: scanner instances built once, rules in order, and which
policy a request gets (its key's, else its model's, else the default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import orjson
from pydantic import ValidationError

from warden.config import Config, hint
from warden.errors import ConfigError
from warden.guard.base import Scanner, Where
from warden.guard.settings import Action, GuardRule
from warden.plugins import ScannerRegistry


class _Keyed(Protocol):
    @property
    def guard(self) -> str | None: ...


@dataclass(slots=True, frozen=True)
class Rule:
    """A built scanner, what to do with its findings, and from which score."""

    scanner: Scanner
    action: Action
    threshold: float

    @property
    def name(self) -> str:
        return self.scanner.name


@dataclass(slots=True, frozen=True)
class Policy:
    name: str
    input: tuple[Rule, ...]
    output: tuple[Rule, ...]
    canary: bool

    @property
    def pseudonymizes(self) -> bool:
        return any(r.action == "pseudonymize" for r in self.input)


class Policies:
    """Every policy of a config, and the choice of one per request."""

    def __init__(self, config: Config, scanners: ScannerRegistry) -> None:
        built: dict[bytes, Scanner] = {}
        self.by_name: dict[str, Policy] = {}
        for name, spec in config.guard.policies.items():
            where = f"guard.policies.{name}"
            self.by_name[name] = Policy(
                name=name,
                input=tuple(_rule(r, f"{where}.input[{i}]", "input", scanners, built)
                            for i, r in enumerate(spec.input)),
                output=tuple(_rule(r, f"{where}.output[{i}]", "output", scanners, built)
                             for i, r in enumerate(spec.output)),
                canary=spec.canary,
            )
        self.default = config.guard.default_policy
        self._by_model: Mapping[str, str | None] = {m.name: m.guard for m in config.models}

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def for_request(self, model: str, key: _Keyed | None) -> Policy | None:
        name = (key.guard if key is not None else None) or self._by_model.get(model) \
            or self.default
        return self.by_name.get(name) if name else None


def _rule(rule: GuardRule, where: str, direction: Where, scanners: ScannerRegistry,
          built: dict[bytes, Scanner]) -> Rule:
    cls = scanners.get(rule.scanner, f"{where}.scanner")
    if direction not in cls.directions:
        raise ConfigError(f"{where}: scanner '{cls.name}' does not scan {direction}s "
                          f"(it scans: {', '.join(sorted(cls.directions))})")
    # One instance per scanner and options: rules that share them share its loaded models.
    signature = orjson.dumps([cls.name, rule.options], option=orjson.OPT_SORT_KEYS)
    scanner = built.get(signature)
    if scanner is None:
        try:
            scanner = cls.from_options(rule.options)
        except ValidationError as exc:
            fields = set(cls.options_model.model_fields)
            problems = "; ".join(
                f"{where}.options.{'.'.join(map(str, e['loc']))}: "
                + (f"unknown option{hint(str(e['loc'][-1]), fields)}"
                   if e["type"] == "extra_forbidden" else e["msg"])
                for e in exc.errors()
            )
            raise ConfigError(f"invalid scanner options: {problems}") from None
        built[signature] = scanner
    return Rule(scanner=scanner, action=rule.action, threshold=rule.threshold)
