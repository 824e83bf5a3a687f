"""The recognizers of the ``pii`` scanner (:mod:`warden.guard.scanners.pii`).

    patterns.py   the pattern recognizer; e-mail, IP and MAC addresses, phone numbers, payment
                  cards (Luhn), IBANs (mod-97), URLs
    ids.py        national identifiers (SSN, NINO, NHS, DNI/NIE, codice fiscale, Aadhaar, ...)
    checksums.py  the check digits and rules those identifiers obey
    addresses.py  street addresses, grown from an anchor to the whole block
    people.py     names after a title or an introduction, ages, dates
    ner.py        people, places and organisations from Presidio and spaCy (the ``ner`` extra)
    spans.py      the candidate type, and overlapping candidates made into one answer
    disguises.py  the plain view of a text: fullwidth forms, invisible characters, look-alike
                  letters, spelled-out "at"/"dot", spaced digits and odd separators undone
"""

from __future__ import annotations

from warden.guard.pii.addresses import find_addresses
from warden.guard.pii.disguises import plain_view
from warden.guard.pii.ids import ID_RECOGNIZERS
from warden.guard.pii.ner import NER_ENTITIES
from warden.guard.pii.patterns import CONTACT_RECOGNIZERS, find_ibans, find_urls
from warden.guard.pii.people import find_people
from warden.guard.pii.spans import Span

PATTERN_ENTITIES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "US_ITIN", "UK_NINO",
    "UK_NHS", "ES_NIF", "IT_FISCAL_CODE", "IN_AADHAAR", "US_DRIVER_LICENSE", "US_PASSPORT",
    "IP_ADDRESS", "MAC_ADDRESS", "URL", "STREET_ADDRESS", "DATE_TIME", "AGE", "PERSON",
)
ENTITIES = PATTERN_ENTITIES + tuple(e for e in NER_ENTITIES if e not in PATTERN_ENTITIES)

_RECOGNIZERS = CONTACT_RECOGNIZERS + ID_RECOGNIZERS

__all__ = ["ENTITIES", "NER_ENTITIES", "PATTERN_ENTITIES", "Span", "find_candidates"]


def find_candidates(text: str) -> list[Span]:
    """What the pattern, address and people recognizers find in ``text`` and in its plain view
    (:mod:`.disguises`), overlaps included; spans are offsets into ``text``."""
    found = _recognized(text)
    view = plain_view(text)
    if view is not None:
        for s in _recognized(view.text):
            start, end = view.span(s.start, s.end)
            found.append(Span(s.entity, s.score, start, end))
    return found


def _recognized(text: str) -> list[Span]:
    lowered = text.lower()
    found = [s for rec in _RECOGNIZERS for s in rec.find(text, lowered)]
    return [*found, *find_ibans(text), *find_urls(text), *find_addresses(text), *find_people(text)]
