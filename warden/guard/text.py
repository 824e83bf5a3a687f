"""Text helpers the scanners share: a folded view of a text whose offsets map back to the
original, word lookup of many phrases at once, and the look-alike letters used to evade filters.

Folding is what makes a word written with Cyrillic look-alike letters, in fullwidth forms, or
with a zero-width space inside read as the plain lower-case word: compatibility decomposition
(NFKD), combining marks and invisible format characters dropped, case folded, and Cyrillic/Greek
letters that look like Latin ones replaced by them. Spans found in the folded text
are mapped back to the original with :meth:`Folded.span`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Cyrillic and Greek letters that render like a Latin letter in common fonts.
CONFUSABLES: dict[str, str] = {
    **dict(zip("аеорсухѕіјһԁԛԝӏкАВЕКМНОРСТХЅІЈԚԜ", "aeopcyxsijhdqwlkABEKMHOPCTXSIJQW", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧονιαρκυχ", "ABEZHIKMNOPTYXoviapkux", strict=True)),
}

_CACHE_LIMIT = 8192  # distinct code points kept; an attacker's rare characters are folded anew


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds each character on first sight."""

    def __missing__(self, cp: int) -> str:
        folded = []
        for c in unicodedata.normalize("NFKD", chr(cp)):
            if unicodedata.category(c) in ("Mn", "Cf"):
                continue  # accents; zero-width, bidi and tag characters
            folded.append(CONFUSABLES.get(c, c))
        out = "".join(folded).casefold()
        if len(self) < _CACHE_LIMIT:
            self[cp] = out
        return out


_FOLD = _FoldTable()


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded text; ``starts[i]`` is the offset in the original of folded character ``i``
    (None when the two have the same offsets)."""

    text: str
    starts: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original text's span for the folded span ``[start, end)``."""
        if self.starts is None:
            return start, end
        first = self.starts[start]
        return first, (self.starts[end - 1] + 1) if end > start else first


def fold(text: str) -> Folded:
    """The folded view of ``text`` (fast for ASCII: lower case, same offsets)."""
    if text.isascii():
        return Folded(text.lower())
    folded = text.translate(_FOLD)
    if len(folded) == len(text) and all(len(_FOLD[ord(c)]) == 1 for c in set(text)):
        return Folded(folded)
    starts: list[int] = []
    for i, c in enumerate(text):
        starts.extend([i] * len(_FOLD[ord(c)]))
    return Folded(folded, tuple(starts))


WORD = re.compile(r"[^\W_]+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


def words(text: str) -> list[str]:
    """The words (runs of letters and digits) of a text."""
    return (_ASCII_WORD if text.isascii() else WORD).findall(text)


def stem(word: str) -> str:
    """A crude plural stripper: ``rifles`` -> ``rifle``, ``matches`` -> ``match``."""
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word[-1] == "s" and word[-2] != "s":
        return word[:-1]
    return word


class PhraseIndex(Generic[T]):
    """Whole-word phrases (one word or several) found in a folded text, each with a value.

    Phrases are indexed by their first word, so the cost is one dict look-up per word of the
    text however many phrases there are. With ``plurals``, a phrase's last word also matches
    with a plural ending added or removed (``rifle`` finds ``rifles`` and the reverse).
    """

    def __init__(self, phrases: Iterable[tuple[str, T]], *, plurals: bool = False) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], T]]] = {}
        for phrase, value in phrases:
            key = tuple(words(fold(phrase).text))
            if not key:
                continue
            last = key[-1]
            forms = {last, stem(last), last + "s", last + "es"} if plurals else {last}
            for form in forms:
                variant = (*key[:-1], form)
                self._by_first.setdefault(variant[0], []).append((variant, value))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))  # longest phrase first at one position

    def __bool__(self) -> bool:
        return bool(self._by_first)

    def find(self, folded: str, found: list[str] | None = None) -> Iterator[tuple[int, int, T]]:
        """``(start, end, value)`` of each phrase occurrence in ``folded`` (folded offsets);
        ``found`` is ``words(folded)`` where the caller has it already."""
        found = words(folded) if found is None else found
        if self._by_first.keys().isdisjoint(found):
            return
        spans = [m.span() for m in (_ASCII_WORD if folded.isascii() else WORD).finditer(folded)]
        i = 0
        while i < len(found):
            for key, value in self._by_first.get(found[i], ()):
                n = len(key)
                if tuple(found[i:i + n]) == key:
                    yield spans[i][0], spans[i + n - 1][1], value
                    i += n - 1
                    break
            i += 1
