"""Disguised personal data: the plain view of a text, whose offsets map back to the original.

A value can be written so that a person or a model still reads it, while a pattern no longer
matches it. The recognizers read the plain view of a text as well as the text itself (when the
two differ), so each of these disguises is undone:

1. fullwidth and other compatibility forms of letters, digits, ``@`` and ``.`` (NFKC);
2. invisible characters put inside a value: zero-width spaces and joiners, soft hyphens, byte
   order and direction marks, combining marks (they are dropped);
3. digits of other scripts: Arabic-Indic, Devanagari, Bengali, ... (read as ASCII digits);
4. look-alike letters from Cyrillic or Greek inside a Latin word (``john`` written with a
   Cyrillic ``o``): in a word that also holds an ASCII letter or digit they read as Latin;
5. "at" and "dot" spelled out: ``jane [at] example [dot] com``, ``jane(at)example.com``,
   ``jane at example dot com`` (bare words only where a dot is spelled out too and the address
   ends in a common top-level domain, so that "look at example.com" and "look at the dot
   product" stay sentences);
6. digits spaced out one by one: ``4 1 1 1 1 1 1 1 ...``, ``1 2 3 - 4 5 - 6 7 8 9``;
7. other separators between groups of digits: dashes of every kind, non-breaking and thin
   spaces, and dots, slashes, underscores or stars (``4111.1111.1111.1111``, ``123/45/6789``),
   read as ``-`` in a run of nine or more digits that is not an IPv4 address.

Every step is one pass over the text with patterns whose repeats are bounded: linear time.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from warden.guard.text import CONFUSABLES, Folded

_CACHE_LIMIT = 8192  # distinct code points kept; an attacker's rare characters are mapped anew
_EXTRA = {"\u3002": ".", "\uff61": ".", "\u2024": ".", "\u2212": "-", "\ufe6b": "@"}


class _PlainTable(dict[str, str]):
    """What each character reads as in the plain view, worked out on first sight."""

    def __missing__(self, c: str) -> str:
        category = unicodedata.category(c)
        if c in _EXTRA:
            out = _EXTRA[c]
        elif category in ("Cf", "Mn", "Me"):
            out = ""  # invisible: zero-width, bidi and tag characters, combining marks
        elif category == "Nd":
            out = str(unicodedata.decimal(c))
        elif category == "Pd":
            out = "-"
        elif category == "Zs":
            out = " "
        else:
            out = unicodedata.normalize("NFKC", c)
        if len(self) < _CACHE_LIMIT:
            self[c] = out
        return out


_PLAIN = _PlainTable()

_TOKEN = re.compile(r"\S+")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_CONFUSABLE_CHARS = frozenset(CONFUSABLES)

# "at" and "dot" in brackets, or bare between spaces; a bracketed "@" or "." too.
_BRACKETED = r"[ \t]{0,3}[\[({<][ \t]{0,2}(?:(?i:at|dot)|@|\.)[ \t]{0,2}[\])}>][ \t]{0,3}"
_BARE = r"[ \t]{1,3}(?i:at|dot)[ \t]{1,3}"
_SPELLED = re.compile(f"{_BRACKETED}|{_BARE}")
# (Possessive repeats: what may follow a name or a label can never be part of it.)
_SPELLED_EMAIL = re.compile(
    rf"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}}+(?:{_BRACKETED}|{_BARE}|@)"
    rf"(?:[A-Za-z0-9-]{{1,63}}+(?:{_BRACKETED}|{_BARE}|\.)){{1,8}}[A-Za-z]{{2,24}}(?![\w-])")

# Common top-level domains: what a bare "dot" must lead to.
_TLDS = frozenset((
    "com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "io", "co", "ai", "app", "dev",
    "me", "tv", "us", "uk", "ca", "au", "nz", "ie", "de", "fr", "es", "it", "nl", "be", "ch", "at",
    "se", "no", "dk", "fi", "pl", "pt", "ru", "ua", "cn", "jp", "kr", "in", "br", "mx", "ar", "za",
    "eu"))

# Groups of digits joined by short runs of separators.
_DIGIT_RUN = re.compile(r"(?<!\d)\d{1,6}+(?:[ .\-_/*\u00b7\u2022~]{1,3}+\d{1,6}+){2,24}(?!\d)")
_PLAIN_GROUPS = re.compile(r"\d{2,6}+(?:[ -]\d{2,6}+)*+")
_SEPARATORS = re.compile(r"[ .\-_/*\u00b7\u2022~]{1,3}")


def plain_view(text: str) -> Folded | None:
    """The plain view of ``text`` (see the module docstring), or None when it reads the same."""
    if text.isascii():
        first, starts = text, None
    else:
        pieces = [_PLAIN[c] for c in text]
        first = "".join(pieces)
        starts = None if first == text else [i for i, p in enumerate(pieces) for _ in p]
    edits: dict[int, str] = {}  # what a character of ``first`` reads as, where it changes
    if not first.isascii():
        _unconfuse(first, edits)
    if "@" in first or "at" in first.lower() or "AT" in first:
        _spell_out(first, edits)
    _join_digits(first, edits)
    if not edits and starts is None:
        return None
    out = list(first)
    for i, c in edits.items():
        out[i] = c
    base = starts if starts is not None else range(len(first))
    mapped = [base[i] for i, piece in enumerate(out) for _ in piece]
    return Folded("".join(out), tuple(mapped))


def _unconfuse(text: str, out: dict[int, str]) -> None:
    """Look-alike letters read as Latin ones in words that mix them with ASCII."""
    for m in _TOKEN.finditer(text):
        word = m.group()
        if word.isascii() or _CONFUSABLE_CHARS.isdisjoint(word) or not _ASCII_ALNUM.search(word):
            continue
        for i, c in enumerate(word, m.start()):
            if c in CONFUSABLES:
                out[i] = CONFUSABLES[c]


def _spell_out(text: str, out: dict[int, str]) -> None:
    """``[at]``/``[dot]`` (and bare ``at``/``dot`` where a dot is spelled too) as ``@``/``.``."""
    for m in _SPELLED_EMAIL.finditer(text):
        tokens = list(_SPELLED.finditer(text, m.start(), m.end()))
        words = [t.group().strip(" \t[](){}<>").lower() for t in tokens]
        bracketed = any(t.group().strip(" \t")[:1] in "[({<" for t in tokens)
        if not tokens or not (bracketed or "dot" in words or "." in words):
            continue
        if not bracketed and m.group()[m.group().rfind(" ") + 1:].lower() not in _TLDS:
            continue  # "look at the dot product": bare words need a domain that reads as one
        for t, word in zip(tokens, words, strict=True):
            out[t.start()] = "@" if word in ("at", "@") else "."
            for i in range(t.start() + 1, t.end()):
                out[i] = ""


def _join_digits(text: str, out: dict[int, str]) -> None:
    """Digits spaced out one by one joined; odd separators between digit groups read as ``-``."""
    for m in _DIGIT_RUN.finditer(text):
        run = m.group()
        if _PLAIN_GROUPS.fullmatch(run):
            continue  # groups of digits with spaces or dashes: the patterns read those
        groups = re.findall(r"\d+", run)
        seps = list(_SEPARATORS.finditer(text, m.start(), m.end()))
        if all(len(g) == 1 for g in groups) and len(groups) >= 7:
            # One separator (the commonest) is between the digits; any other is between groups.
            common = Counter(s.group() for s in seps).most_common(1)[0][0]
            for s in seps:
                out[s.start()] = "" if s.group() == common else "-"
                for i in range(s.start() + 1, s.end()):
                    out[i] = ""
            continue
        digits = sum(map(len, groups))
        ipv4 = len(groups) == 4 and all(len(g) <= 3 for g in groups)
        if digits < 9 or ipv4 or all(s.group() in (" ", "-") for s in seps):
            continue
        for s in seps:
            out[s.start()] = "-"
            for i in range(s.start() + 1, s.end()):
                out[i] = ""
