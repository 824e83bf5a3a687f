"""``pii``: personal data in prompts and answers (OWASP LLM02, sensitive information
disclosure).

Regular expressions with check digits find what has a shape: e-mail addresses, phone numbers,
payment cards (Luhn), IBANs (mod-97), national identifiers, IP and MAC addresses, URLs, street
addresses, dates, ages, and names after a title. With ``ner: true`` Microsoft Presidio's analyzer
and a small spaCy model add the names of people, places and organisations (the ``ner`` extra).
Entity types are named as Presidio names them. The recognizers live in :mod:`warden.guard.pii`;
docs/guardrails-pii.md lists them with their scores and measured accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import Field, field_validator

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.guard.pii import ENTITIES, NER_ENTITIES, find_candidates
from warden.guard.pii.ner import NerEngine, refine, require_extra
from warden.guard.pii.spans import resolve
from warden.hookspecs import hookimpl


class PiiOptions(ScannerOptions):
    entities: list[str] | None = Field(
        None, description="Entity types to report (EMAIL_ADDRESS, PHONE_NUMBER, ...); all when unset.")
    ner: bool = Field(
        False, description="Find names of people, places and organisations with Presidio and spaCy "
                           "(needs pip install 'warden[ner]').")
    min_score: float = Field(
        0.5, ge=0.0, le=1.0, description="Drop detections scored below this (0 to 1).")

    @field_validator("entities")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity type(s) {', '.join(unknown)}; "
                             f"known: {', '.join(ENTITIES)}")
        return value


class PiiScanner(Scanner):
    """Each piece of personal data, typed as Presidio types it, with its span."""

    name = "pii"
    scans_every_field = True
    options_model = PiiOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, PiiOptions)
        self._entities = frozenset(options.entities or ENTITIES)
        self._min_score = options.min_score
        self._ner: NerEngine | None = None
        if options.ner and self._entities & set(NER_ENTITIES):
            require_extra()
            self._ner = NerEngine()

    @classmethod
    def from_options(cls, raw: Mapping[str, Any] | None = None) -> Scanner:
        options = PiiOptions.model_validate(dict(raw or {}))
        # With the NER model a scan takes milliseconds: the gateway runs it in a worker thread.
        return NerPiiScanner(options) if options.ner else cls(options)

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        spans = find_candidates(text)
        if self._ner is not None:
            spans = refine(text, self._ner.find(text), spans)
        kept = [s for s in spans if s.score >= self._min_score and s.entity in self._entities]
        return [s.detection() for s in resolve(kept)]


class NerPiiScanner(PiiScanner):
    """The ``pii`` scanner with ``ner: true``."""

    blocking = True


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(PiiScanner)
