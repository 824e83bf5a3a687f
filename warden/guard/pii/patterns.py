"""The pattern recognizers: a regular expression finds candidates, a check (a check digit, a
range, the words just before) keeps or drops each one and gives it its score.

Scores follow one scale. 0.9 and above: the check leaves little doubt (an IBAN whose mod-97
holds, a card number of a known network that passes Luhn). 0.6 to 0.8: the shape is typical
but other things share it (a phone number in a common national format). Below 0.5: only a
shape, which a context word nearby ("phone", "ssn", "card") lifts by ``CONTEXT_BOOST``.

Speed: each expression opens with a lookahead on its first character, which lets Python's
``re`` skip quickly to the places where a match can start; recognizers of words ("passport")
are tried only when the word is in the text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from warden.guard.pii import checksums
from warden.guard.pii.spans import Span

CONTEXT_BOOST = 0.35
CONTEXT_WINDOW = 48  # characters before a candidate searched for context words

Check = Callable[[re.Match[str], str], tuple[str, float] | None]


@dataclass(frozen=True, slots=True)
class PatternRecognizer:
    """Entities found by a regular expression and a check of each match.

    ``check(match, text)`` returns the entity type and score, or None to drop the match.
    ``group`` names the part of the match that is the entity (the rest is context the
    expression needed). ``needle``, when set, is a lower-case string the text must contain
    for the expression to be worth running.
    """

    regex: re.Pattern[str]
    check: Check
    group: int | str = 0
    needle: str | None = None

    def find(self, text: str, lowered: str) -> Iterator[Span]:
        if self.needle is not None and self.needle not in lowered:
            return
        for m in self.regex.finditer(text):
            found = self.check(m, text)
            if found is not None:
                yield Span(found[0], min(found[1], 1.0), m.start(self.group), m.end(self.group))


def words(*alternatives: str) -> re.Pattern[str]:
    """Context words: any of ``alternatives`` (regular expressions) at a word start."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")", re.IGNORECASE)


def context_before(text: str, start: int, context: re.Pattern[str]) -> bool:
    """True when ``context`` occurs in the ``CONTEXT_WINDOW`` characters before ``start``."""
    return context.search(text, max(0, start - CONTEXT_WINDOW), start) is not None


def digits_of(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


# --- e-mail, IP and MAC addresses ------------------------------------------------------------

_EMAIL = re.compile(
    r"(?=[A-Za-z0-9])(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
_IPV4 = re.compile(r"(?=[0-9])(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w]|\.[0-9])")
_IPV6 = re.compile(r"(?=[0-9A-Fa-f:])(?<![\w:])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:.]{3,45}"
                   r"(?![\w:])")
_MAC = re.compile(r"(?=[0-9A-Fa-f])(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}"
                  r"[0-9A-Fa-f]{2}(?![\w:-])")
_VERSION_WORDS = words("version", "v", "release", "build")


def _email(m: re.Match[str], text: str) -> tuple[str, float] | None:
    return "EMAIL_ADDRESS", 1.0


def _ipv4(m: re.Match[str], text: str) -> tuple[str, float] | None:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return None
    return "IP_ADDRESS", 0.3 if context_before(text, m.start(), _VERSION_WORDS) else 0.9


def _ipv6(m: re.Match[str], text: str) -> tuple[str, float] | None:
    try:
        ipaddress.IPv6Address(m.group(0))
    except ValueError:
        return None
    return "IP_ADDRESS", 0.9


def _mac(m: re.Match[str], text: str) -> tuple[str, float] | None:
    return "MAC_ADDRESS", 0.8


# --- phone numbers ---------------------------------------------------------------------------

# A country code or trunk prefix, an optional area code in brackets, then one to six groups
# of digits joined by one separator each, and an optional extension.
_PHONE = re.compile(
    r"(?=[+(0-9])(?<![\w+/.,-])(?:(?P<intl>\+|00)[0-9]{1,3}[ .-]?)?(?:\(0\)[ ]?)?"
    r"(?P<area>\([0-9]{1,5}\)[ .-]?)?[0-9]{1,5}(?:[ .-][0-9]{1,8}){0,5}"
    r"(?:[ ]?(?:x|ext\.?|#)[ ]?[0-9]{1,5})?(?![\w]|[.,/-][0-9])")
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?|#)[ ]?[0-9]")
_PHONE_WORDS = words("phone", "tel", "telephone", "mobile", "cell", "call", "fax", "contact",
                     "reach", "dial", "whatsapp", "sms", "text me", "number", "answering", "ring",
                     "hotline", "registered")
_NANP = re.compile(r"(?:\+?1[ .-]?)?(?:\([0-9]{3}\)[ ]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}")
_DATE_LIKE = re.compile(r"[0-9]{4}[.-][0-9]{1,2}[.-][0-9]{1,2}|[0-9]{1,2}[.-][0-9]{1,2}[.-][0-9]{4}")


def _phone(m: re.Match[str], text: str) -> tuple[str, float] | None:
    number = _EXTENSION.split(m.group(0))[0]
    digits = digits_of(number)
    if not 7 <= len(digits) <= 15 or _DATE_LIKE.fullmatch(number) or len(set(digits)) < 3:
        return None
    if m.group("intl"):
        score = 0.75
    elif _NANP.fullmatch(number):
        score = 0.7
    elif not re.search(r"[ .()-]", number):
        score = 0.15  # a bare run of digits: only context makes it a phone number
    elif m.group("area") or (number.startswith("0") and len(digits) >= 9):
        score = 0.6
    else:
        score = 0.4
    if context_before(text, m.start(), _PHONE_WORDS):
        score += CONTEXT_BOOST
    return "PHONE_NUMBER", score


# --- payment cards and bank accounts ---------------------------------------------------------

_CARD = re.compile(r"(?=[0-9])(?<![\w+.-])[0-9](?:[ -]?[0-9]){11,18}(?![\w]|[.-][0-9])")
_CARD_WORDS = words("card", "credit", "debit", "visa", "master ?card", "amex", "american express",
                    "discover", "maestro", "cc", "pan", "jcb", "diners", "payment", "charge")
# The two check digits, with the country code before them checked by a look-behind: starting
# at the digits is what lets the search skip ahead (letters are everywhere, digits are not).
_IBAN = re.compile(r"(?=[0-9])(?<=[A-Za-z]{2})(?<![A-Za-z0-9][A-Za-z]{2})[0-9]{2}"
                   r"(?:[ -]?[A-Za-z0-9]){10,30}")


def _card(m: re.Match[str], text: str) -> tuple[str, float] | None:
    raw = m.group(0)
    digits = digits_of(raw)
    if not checksums.luhn(digits) or len(set(digits)) < 2:
        return None
    groups = re.split(r"[ -]", raw)
    regular = len(groups) == 1 or all(len(g) == 4 for g in groups[:-1]) or (
        [len(g) for g in groups] in ([4, 6, 5], [4, 6, 4]))
    score = 0.9 if checksums.card_brand(digits) else 0.4
    if not regular:
        score -= 0.3
    if context_before(text, m.start(), _CARD_WORDS):
        score += CONTEXT_BOOST
    return "CREDIT_CARD", score


def find_ibans(text: str) -> Iterator[Span]:
    """IBANs whose country length and mod-97 check hold, in print or electronic form."""
    # The expression may run into the next word ("GB82 WEST ... 32 please"): cut the match to
    # its country's length, counting only letters and digits, then check mod-97.
    for m in _IBAN.finditer(text):
        start = m.start() - 2
        want = checksums.IBAN_LENGTHS.get(text[start:start + 2].upper())
        if want is None:
            continue
        taken, end = 2, m.start()
        for i in range(m.start(), m.end()):
            if text[i].isalnum():
                taken += 1
                if taken == want:
                    end = i + 1
                    break
        code = re.sub(r"[ -]", "", text[start:end]).upper()
        if taken == want and (end == len(text) or not text[end].isalnum()) and checksums.iban(code):
            yield Span("IBAN_CODE", 1.0, start, end)


# --- URLs ------------------------------------------------------------------------------------

_URL = re.compile(r"(?=[hHwW])(?<![\w@/])(?:https?://|www\.)[^\s<>\"'`{}|\\^]+", re.IGNORECASE)


def find_urls(text: str) -> Iterator[Span]:
    """Web addresses with a scheme or a ``www.``; trailing punctuation is not part of one."""
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(".,;:!?")
        while url.endswith(")") and url.count("(") < url.count(")"):
            url = url[:-1].rstrip(".,;:!?")
        if len(url) > 4:
            yield Span("URL", 0.6, m.start(), m.start() + len(url))


CONTACT_RECOGNIZERS: tuple[PatternRecognizer, ...] = (
    PatternRecognizer(_EMAIL, _email, needle="@"),
    PatternRecognizer(_IPV4, _ipv4, needle="."),
    PatternRecognizer(_IPV6, _ipv6, needle=":"),
    PatternRecognizer(_MAC, _mac),
    PatternRecognizer(_PHONE, _phone),
    PatternRecognizer(_CARD, _card),
)
