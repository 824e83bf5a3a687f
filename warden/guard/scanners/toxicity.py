"""``toxicity``: insults, threats, slurs, self-harm, violent instructions and profanity, found
with a lexicon of words, phrases and patterns (``warden/guard/data/toxicity.yaml``).

Each match is one detection with its span; its type is the category (``insult``, ``threat``,
``slur``, ``self_harm``, ``violence``, ``profanity``) and its score the lexicon group's. Words are
matched whole, on the folded text, with digit and symbol stand-ins read as letters (``1d10t``).
The lexicon never lists the names of groups of people: mentioning a group is not toxic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.guard.text import PhraseIndex, fold, words
from warden.hookspecs import hookimpl

CATEGORIES = ("insult", "threat", "slur", "self_harm", "violence", "profanity")
# Stand-ins for letters, and typographic apostrophes; one character for one, so offsets hold.
_STAND_INS = str.maketrans("013457@$\u2019\u2018\u02bc", "oieastas'''")


@dataclass(frozen=True, slots=True)
class _Group:
    category: str
    score: float
    pattern: re.Pattern[str]
    triggers: frozenset[str]  # the pattern runs only on texts with one of these words


@dataclass(frozen=True, slots=True)
class Lexicon:
    """A loaded lexicon: whole-word terms, trigger-gated patterns, and allowed idioms."""

    terms: PhraseIndex[tuple[str, float]]
    groups: tuple[_Group, ...]
    allow: re.Pattern[str] | None

    @classmethod
    def load(cls, path: Path | None, categories: frozenset[str]) -> Lexicon:
        """Read a lexicon file (the built-in one when ``path`` is None), keeping ``categories``."""
        if path is None:
            raw = resources.files("warden.guard").joinpath("data/toxicity.yaml").read_text("utf-8")
        else:
            raw = path.read_text("utf-8")
        data: dict[str, Any] = yaml.safe_load(raw) or {}
        terms: list[tuple[str, tuple[str, float]]] = []
        groups: list[_Group] = []
        for category, entries in (data.get("categories") or {}).items():
            if category not in categories:
                continue
            for entry in entries:
                score = float(entry["score"])
                terms += [(t, (category, score)) for t in entry.get("terms", ())]
                patterns = entry.get("patterns", ())
                if patterns:
                    triggers = frozenset(fold(t).text for t in entry.get("triggers", ()))
                    groups.append(_Group(category, score, re.compile("|".join(patterns)), triggers))
        allow = data.get("allow") or ()
        return cls(PhraseIndex(terms, plurals=True), tuple(groups),
                   re.compile("|".join(allow)) if allow else None)


class ToxicityOptions(ScannerOptions):
    categories: list[str] = Field(default_factory=lambda: list(CATEGORIES),
                                  description="The categories reported.")
    lexicon: str | None = Field(
        None, description="Path to a lexicon file in the built-in one's format, used instead of it.")

    @field_validator("categories")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categor(ies) {', '.join(unknown)}; "
                             f"known: {', '.join(CATEGORIES)}")
        return value

    @field_validator("lexicon")
    @classmethod
    def _loads(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Lexicon.load(Path(value), frozenset(CATEGORIES))
            except (OSError, yaml.YAMLError, re.error, KeyError, TypeError, ValueError) as e:
                raise ValueError(f"lexicon file {value!r} cannot be used: {e}") from None
        return value


class ToxicityScanner(Scanner):
    """Toxic words, phrases and patterns, one detection per match, typed by category."""

    name = "toxicity"
    options_model = ToxicityOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, ToxicityOptions)
        path = Path(options.lexicon) if options.lexicon else None
        self.lexicon = Lexicon.load(path, frozenset(options.categories))

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        folded = fold(text)
        norm = folded.text.translate(_STAND_INS)
        found = words(norm)
        hits = [(s, e, cat, score) for s, e, (cat, score) in self.lexicon.terms.find(norm, found)]
        present = set(found)
        for group in self.lexicon.groups:
            if not group.triggers or not group.triggers.isdisjoint(present):
                hits += [(m.start(), m.end(), group.category, group.score)
                         for m in group.pattern.finditer(norm) if m.end() > m.start()]
        if not hits:
            return []
        allowed = [m.span() for m in self.lexicon.allow.finditer(norm)] if self.lexicon.allow else []
        kept: list[tuple[int, int, str, float]] = []
        for hit in sorted(hits, key=lambda h: (-h[3], h[0])):  # strongest first
            s, e = hit[0], hit[1]
            inside_allowed = any(a <= s and e <= b for a, b in allowed)
            if not inside_allowed and not any(s < k[1] and k[0] < e for k in kept):
                kept.append(hit)
        kept.sort()
        return [Detection(cat, score, *folded.span(s, e)) for s, e, cat, score in kept]


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(ToxicityScanner)
