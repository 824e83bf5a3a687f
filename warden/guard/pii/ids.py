"""National identifiers: US Social Security and taxpayer numbers, UK National Insurance and NHS
numbers, Spanish DNI/NIE, Italian codice fiscale, Indian Aadhaar, and driver's licence and
passport numbers written after their label.

Each is checked as far as its issuer allows (:mod:`.checksums`). Where the shape alone is
common (nine digits, a 3-3-4 group that is also a North American phone number), the score
stays low unless the words before say what the number is.
"""

from __future__ import annotations

import re

from warden.guard.pii import checksums
from warden.guard.pii.patterns import CONTEXT_BOOST, PatternRecognizer, context_before, digits_of, words

_SSN = re.compile(r"(?=[0-9])(?<![\w-])([0-9]{3})([- ]?)([0-9]{2})\2([0-9]{4})(?![\w]|-[0-9])")
_SSN_WORDS = words("ssn", "social security", "social sec", "ss#", "ss #", "ssa")
_ITIN_WORDS = words("itin", "taxpayer", "tax id", "tin")
_NINO = re.compile(r"(?=[A-Z])(?<![\w])[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![\w])")
_NHS = re.compile(r"(?=[0-9])(?<![\w-])[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}(?![\w]|-[0-9])")
_NHS_WORDS = words("nhs", "health service", "patient number")
_NIF = re.compile(r"(?=[XYZ0-9])(?<![\w-])[XYZ0-9][0-9]{7}-?[A-Z](?![\w])")
_NIF_WORDS = words("dni", "nif", "nie", "documento")
_FISCAL = re.compile(r"(?=[A-Z])(?<![\w])[A-Z]{6}[0-9]{2}[A-EHLMPRST][0-9]{2}[A-Z][0-9]{3}[A-Z](?![\w])")
_AADHAAR = re.compile(r"(?=[2-9])(?<![\w-])[2-9][0-9]{3}([ -]?)[0-9]{4}\1[0-9]{4}(?![\w]|-[0-9])")
_AADHAAR_WORDS = words("aadhaar", "aadhar", "uidai", "uid")
# "driver's license number is F162823540116", "passport no: 533380006"
_LICENSE = re.compile(
    r"(?i:driver'?s?\s+licen[sc]e|driving\s+licen[sc]e)(?:\s+(?i:number|no\.?|#))?"
    r"(?:\s+(?i:is))?\s*[:#]?\s*(?P<id>(?=[A-Z0-9-]*[0-9][A-Z0-9-]*[0-9])[A-Z0-9][A-Z0-9-]{4,18}"
    r"[A-Z0-9])(?![\w-])")
_PASSPORT = re.compile(
    r"(?i:passport)(?:\s+(?i:number|no\.?|#))?(?:\s+(?i:is))?\s*[:#]?\s*"
    r"(?P<id>(?=[A-Z0-9]*[0-9]{4})[A-Z0-9]{6,9})(?![\w-])")


def _ssn(m: re.Match[str], text: str) -> tuple[str, float] | None:
    digits = m.group(1) + m.group(3) + m.group(4)
    dashed, spaced = m.group(2) == "-", m.group(2) == " "
    if checksums.us_ssn(digits):
        score = 0.85 if dashed else 0.5 if spaced else 0.1
        if context_before(text, m.start(), _SSN_WORDS):
            score += CONTEXT_BOOST + 0.2
        return "US_SSN", score
    if checksums.us_itin(digits):
        score = 0.7 if dashed else 0.15
        if context_before(text, m.start(), _ITIN_WORDS):
            score += CONTEXT_BOOST
        return "US_ITIN", score
    return None


def _nino(m: re.Match[str], text: str) -> tuple[str, float] | None:
    return ("UK_NINO", 0.85) if checksums.uk_nino(m.group(0).replace(" ", "")) else None


def _nhs(m: re.Match[str], text: str) -> tuple[str, float] | None:
    # NHS numbers share the 3-3-4 shape of North American phone numbers: context decides.
    if not checksums.uk_nhs(digits_of(m.group(0))):
        return None
    return "UK_NHS", 1.0 if context_before(text, m.start(), _NHS_WORDS) else 0.2


def _nif(m: re.Match[str], text: str) -> tuple[str, float] | None:
    if not checksums.es_nif(m.group(0).replace("-", "")):
        return None
    return "ES_NIF", 0.95 if context_before(text, m.start(), _NIF_WORDS) else 0.7


def _fiscal(m: re.Match[str], text: str) -> tuple[str, float] | None:
    return ("IT_FISCAL_CODE", 0.95) if checksums.it_fiscal_code(m.group(0)) else None


def _aadhaar(m: re.Match[str], text: str) -> tuple[str, float] | None:
    if not checksums.in_aadhaar(digits_of(m.group(0))):
        return None
    score = 0.5 if m.group(1) else 0.2
    if context_before(text, m.start(), _AADHAAR_WORDS):
        score += CONTEXT_BOOST + 0.1
    return "IN_AADHAAR", score


def _license(m: re.Match[str], text: str) -> tuple[str, float] | None:
    return "US_DRIVER_LICENSE", 0.8


def _passport(m: re.Match[str], text: str) -> tuple[str, float] | None:
    return "US_PASSPORT", 0.8


ID_RECOGNIZERS: tuple[PatternRecognizer, ...] = (
    PatternRecognizer(_SSN, _ssn),
    PatternRecognizer(_NINO, _nino),
    PatternRecognizer(_NHS, _nhs),
    PatternRecognizer(_NIF, _nif),
    PatternRecognizer(_FISCAL, _fiscal),
    PatternRecognizer(_AADHAAR, _aadhaar),
    PatternRecognizer(_LICENSE, _license, group="id", needle="licen"),
    PatternRecognizer(_PASSPORT, _passport, group="id", needle="passport"),
)
