"""Lists of things a deployment does not want to see: ``banned_substrings``, ``banned_regex``
and ``banned_topics``.

Substrings and topics are matched on the folded text (:mod:`warden.guard.text`: case, accents,
fullwidth forms, invisible characters and Cyrillic/Greek look-alikes do not hide a match); spans
point into the original text. Regular expressions run on the original text, as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from re import _constants, _parser  # type: ignore[attr-defined]  # the parser re itself uses
from typing import Any

from pydantic import Field, field_validator

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.guard.text import PhraseIndex, fold
from warden.hookspecs import hookimpl


class BannedSubstringsOptions(ScannerOptions):
    substrings: list[str] = Field(min_length=1, description="Text not allowed, matched ignoring case.")
    whole_word: bool = Field(False, description="Match only whole words (``cat`` not in ``concat``).")

    @field_validator("substrings")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        blank = [i for i, s in enumerate(value) if not fold(s).text.strip()]
        if blank:
            raise ValueError(f"substrings[{blank[0]}] is empty; remove it or write the text to ban")
        return value


class BannedSubstringsScanner(Scanner):
    """Each occurrence of a banned substring: type ``banned_substring``, score 1.0."""

    name = "banned_substrings"
    options_model = BannedSubstringsOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, BannedSubstringsOptions)
        folded = sorted({fold(s).text.strip() for s in options.substrings}, key=len, reverse=True)
        body = "|".join(map(re.escape, folded))
        self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)" if options.whole_word else body)

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        folded = fold(text)
        return [Detection("banned_substring", 1.0, *folded.span(*m.span()))
                for m in self._pattern.finditer(folded.text)]


class BannedRegexOptions(ScannerOptions):
    patterns: list[str] = Field(min_length=1, description="Python regular expressions not allowed.")
    case_sensitive: bool = Field(False, description="Match case exactly.")

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"patterns[{i}] {pattern!r} is not a valid regular expression: {e}; "
                                 "write it in Python `re` syntax (escape a literal with \\)") from None
            if compiled.fullmatch(""):
                raise ValueError(f"patterns[{i}] {pattern!r} matches the empty string; "
                                 "it would match everywhere")
            if _nested_repeat(_parser.parse(pattern)):
                raise ValueError(
                    f"patterns[{i}] {pattern!r} repeats a part that itself repeats a variable "
                    "number of times, as (a+)+ does: on some texts matching it takes time "
                    "exponential in their length, and any client could send one; make one of the "
                    "two repeats possessive (a++ or (?:...)*+) or fixed, or write it without nesting")
        return value


def _nested_repeat(items: Any, inside: bool = False) -> bool:
    """Whether a parsed pattern has a variable repeat inside an unbounded, backtracking one."""
    for op, av in items:
        if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT):
            lo, hi, sub = av
            if inside and lo != hi:
                return True
            if _nested_repeat(sub, inside or hi == _constants.MAXREPEAT):
                return True
        elif op in (_constants.SUBPATTERN, _constants.ATOMIC_GROUP, _constants.BRANCH):
            subs = (av[-1],) if op == _constants.SUBPATTERN else (
                (av,) if op == _constants.ATOMIC_GROUP else av[1])
            if any(_nested_repeat(sub, inside) for sub in subs):
                return True
    return False


class BannedRegexScanner(Scanner):
    """Each match of a banned pattern: type ``banned_regex``, score 1.0."""

    name = "banned_regex"
    options_model = BannedRegexOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, BannedRegexOptions)
        flags = 0 if options.case_sensitive else re.IGNORECASE
        self._patterns = tuple(re.compile(p, flags) for p in options.patterns)

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        found = [Detection("banned_regex", 1.0, *m.span())
                 for p in self._patterns for m in p.finditer(text) if m.end() > m.start()]
        found.sort(key=lambda d: d.start or 0)
        return found


class BannedTopicsOptions(ScannerOptions):
    topics: dict[str, list[str]] = Field(
        min_length=1, description="Each topic's keywords and phrases, matched as whole words on the "
        "folded text; a plural ending on a keyword's last word is ignored.")
    saturation: int = Field(
        3, ge=1, description="Distinct keywords of one topic that give score 1.0; fewer give a "
        "proportional score (one of three: 0.33).")

    @field_validator("topics")
    @classmethod
    def _keywords(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for topic, keywords in value.items():
            if not re.fullmatch(r"[\w.-]+", topic):
                raise ValueError(f"topic name {topic!r}: use letters, digits, '_', '-' or '.'")
            if not keywords:
                raise ValueError(f"topic {topic!r} has no keywords; list the words that mark it")
            empty = [k for k in keywords if not fold(k).text.strip()]
            if empty:
                raise ValueError(f"topic {topic!r} has an empty keyword")
        return value


class BannedTopicsScanner(Scanner):
    """One whole-text detection per topic present: type ``banned_topic:<topic>``, score
    ``min(1, distinct keywords found / saturation)``."""

    name = "banned_topics"
    options_model = BannedTopicsOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, BannedTopicsOptions)
        self._saturation = options.saturation
        self._index = PhraseIndex(
            ((keyword, (topic, i)) for topic, keywords in options.topics.items()
             for i, keyword in enumerate(keywords)), plurals=True)

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        hits: dict[str, set[int]] = {}
        for _, _, (topic, keyword) in self._index.find(fold(text).text):
            hits.setdefault(topic, set()).add(keyword)
        return [Detection(f"banned_topic:{topic}", min(1.0, len(keywords) / self._saturation))
                for topic, keywords in sorted(hits.items())]


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(BannedSubstringsScanner)
    register(BannedRegexScanner)
    register(BannedTopicsScanner)
