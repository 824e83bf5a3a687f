"""What regular expressions can say about a person without a language model: a name after a
title or an introduction ("Mr. Ferko Takáts", "my name is Rubija"), an age ("a 65-year-old",
"I'll turn 21") and a date that reads as one (a date of birth first of all).

Names found this way are few next to what the NER model finds (``ner: true``); they are what
the regex-only scanner can still catch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from warden.guard.pii.spans import Span, word_set

_UPPER = r"A-Z\u00c0-\u00de\u0100-\u024f\u0370-\u03ff\u0400-\u042f"
_NAME = rf"[{_UPPER}][\w'\u2019-]*(?: (?:[{_UPPER}]\.|[{_UPPER}][\w'\u2019-]+)){{0,3}}"
_TITLED = re.compile(rf"(?=[MDPSHF])\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Madam|Mme|Mlle|Herr|Frau|Sr|Sra)"
                     rf"\.? ({_NAME})")
_INTRODUCED = re.compile(
    rf"(?=[mMnNiIcCsSrRdDhHtT])(?i:\bmy name is|\bname:|\bi am called|\bcall me|"
    rf"\bsigned,?|\bregards,|\bsincerely,|\bdear|\bhi|\bhello|\bthanks,?)[ \t]+(?P<name>{_NAME})")
# Capitalised words that follow those cues but are not names.
_NOT_NAMES = word_set(
    "I A The This That It Is My Your Our There Here Thanks Please Team All Everyone Sir Madam "
    "Customer Support Service Bot User Good Morning Afternoon Evening Name Address World Monday "
    "Tuesday Wednesday Thursday Friday Saturday Sunday Today Tomorrow Tonight Later Back")

_AGE = re.compile(
    r"(?=[0-9aAtT])\b(?P<age>[0-9]{1,3})(?:[ -]years?[ -]old|[ -]year[ -]old|[ -]yo\b|[ -]y/o)|"
    r"\b(?i:aged|age:?|age of|turn(?:ed|s|ing)?)[ ]+(?P<age2>\d{1,3})\b(?!\s*(?:%|percent|st|nd|rd|th))")

_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|"
           "December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec")
_DATE = re.compile(
    r"(?=[0-9ADFJMNOS])\b(?:(?P<y1>(?:19|20)\d{2})-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"
    r"|(?P<a2>\d{1,2})[/.](?P<b2>\d{1,2})[/.](?P<y2>(?:19|20)?\d{2})"
    rf"|(?P<d3>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?:{_MONTHS})\.?,? (?P<y3>(?:19|20)\d{{2}})"
    rf"|(?:{_MONTHS})\.? (?P<d4>\d{{1,2}})(?:st|nd|rd|th)?,? (?P<y4>(?:19|20)\d{{2}}))\b")
_BIRTH_WORDS = re.compile(r"(?i:\bborn\b|birth|\bdob\b|d\.o\.b|birthday)")


def find_people(text: str) -> Iterator[Span]:
    """Names after titles and introductions, ages and dates."""
    for m in _TITLED.finditer(text):
        yield Span("PERSON", 0.7, m.start(), m.end())
    for m in _INTRODUCED.finditer(text):
        name = m.group("name")
        if name.split(" ")[0].rstrip(".") not in _NOT_NAMES:
            yield Span("PERSON", 0.6, m.start("name"), m.end("name"))
    for m in _AGE.finditer(text):
        group = "age" if m.group("age") else "age2"
        if 0 < int(m.group(group)) < 125:
            yield Span("AGE", 0.6, m.start(group), m.end(group))
    for m in _DATE.finditer(text):
        if _valid_date(m):
            birth = _BIRTH_WORDS.search(text, max(0, m.start() - 40), m.start()) is not None
            yield Span("DATE_TIME", 0.9 if birth else 0.6, m.start(), m.end())


def _valid_date(m: re.Match[str]) -> bool:
    if m.group("y1"):
        return 1 <= int(m.group("m1")) <= 12 and 1 <= int(m.group("d1")) <= 31
    if m.group("y2"):
        a, b = int(m.group("a2")), int(m.group("b2"))
        return min(a, b) >= 1 and max(a, b) <= 31 and min(a, b) <= 12
    return True
