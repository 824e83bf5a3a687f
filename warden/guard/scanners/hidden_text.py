"""``hidden_text``: characters a reader does not see but a model does.

- ``ascii_smuggling``: Unicode tag characters (U+E0000 to U+E007F), which mirror ASCII invisibly; the
  span covers the run, so its length is the hidden payload's, and :func:`decode_tags` reads it.
  A tag sequence that spells a subdivision flag emoji (🏴 + tags + cancel tag) is not reported.
- ``variation_selectors``: two or more variation selectors in a row (one byte each in the
  "emoji smuggling" encoding; legitimate text never stacks them). :func:`decode_variation_selectors`.
- ``zero_width``: zero-width spaces and joiners, word joiners, invisible operators, fillers,
  soft hyphens, a byte-order mark inside the text; only when the text holds at least
  ``min_zero_width`` of them (a lone one is a common leftover of copy and paste). Zero-width
  spaces and joiners next to emoji or to letters of scripts that use them (Arabic, Indic, Thai,
  Khmer, ...) are not reported.
- ``bidi_control``: embedding, override and isolate controls that reorder what is displayed
  (Trojan Source); marks (LRM, RLM, ALM) only in text without right-to-left letters.
- ``homoglyph``: a word that mixes Latin letters with Cyrillic or Greek look-alikes (``paypal`` with
  a Cyrillic ``a``).
- ``control_char``: control characters other than tab and newlines, DEL and the C1 CSI
  (terminal escape sequences).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from warden.guard.base import Detection, ScanContext, Scanner, ScannerOptions
from warden.guard.text import CONFUSABLES
from warden.hookspecs import hookimpl

_TAGS = "\U000e0000-\U000e007f"
_VS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_ZW = "\u00ad\u034f\u115f\u1160\u180e\u200b-\u200d\u2060-\u2064\u3164\ufeff\uffa0"
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x9b"  # C0 but tab and newlines, DEL, CSI
_ZW_CHAR = re.compile(f"[{_ZW}]")
_RUNS = re.compile(f"[{_TAGS}]+|[{_VS}]{{2,}}|[{_ZW}]+|[{_BIDI}]+")
_ASCII_CONTROL = re.compile(f"[{_CONTROL}]+")
_HIDDEN = re.compile(f"[{_TAGS}{_VS}{_ZW}{_BIDI}]")
_GREEK_CYRILLIC = re.compile(r"[\u0370-\u03ff\u0400-\u052f]+")
_LETTERS = re.compile(r"[^\W\d_]*")
_LATIN = re.compile(r"[A-Za-z]")
_RTL_LETTER = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_FLAG = "\U0001f3f4"
_CANCEL_TAG = "\U000e007f"


def decode_tags(text: str) -> str:
    """The ASCII text hidden in tag characters (other characters are dropped)."""
    return "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)


def decode_variation_selectors(text: str) -> bytes:
    """The bytes hidden in a run of variation selectors (VS1-16 are 0-15, VS17-256 are
    16-255)."""
    out = bytearray()
    for c in text:
        cp = ord(c)
        if 0xFE00 <= cp <= 0xFE0F:
            out.append(cp - 0xFE00)
        elif 0xE0100 <= cp <= 0xE01EF:
            out.append(cp - 0xE0100 + 16)
    return bytes(out)


def _mixed_script_words(text: str) -> list[Detection]:
    """Words with both Latin letters and Cyrillic/Greek look-alikes."""
    found: list[Detection] = []
    done = 0
    for m in _GREEK_CYRILLIC.finditer(text):
        if m.start() < done:
            continue
        start = m.start()
        while start > 0 and text[start - 1].isalpha():
            start -= 1
        end = _LETTERS.match(text, m.end()).end()  # type: ignore[union-attr]  # * always matches
        done, word = end, text[start:end]
        if _LATIN.search(word) and any(c in CONFUSABLES for c in word):
            found.append(Detection("homoglyph", 0.9, start, end))
    return found


# Scripts whose words use joiners or zero-width spaces: Arabic, Syriac, Thaana, N'Ko, Indic,
# Thai, Lao, Tibetan, Myanmar, Khmer, Mongolian, Arabic presentation forms; and emoji.
_JOINING = re.compile("[\u0600-\u0fff\u1000-\u109f\u1780-\u18af\ufb50-\ufdff\ufe70-\ufeff"
                      "\u2600-\u27bf\ufe00-\ufe0f\U0001f000-\U0001faff]")


def _needs_joiner(c: str) -> bool:
    """Whether a zero-width character next to ``c`` is ordinary text."""
    return bool(c) and _JOINING.match(c) is not None


class HiddenTextOptions(ScannerOptions):
    ascii_smuggling: bool = Field(True, description="Report Unicode tag characters.")
    variation_selectors: bool = Field(True, description="Report runs of variation selectors.")
    zero_width: bool = Field(True, description="Report zero-width and other invisible characters.")
    min_zero_width: int = Field(
        2, ge=1, description="Report zero-width characters only when the text holds at least this "
        "many (a lone one is a common copy-and-paste leftover).")
    bidi: bool = Field(True, description="Report bidirectional controls.")
    homoglyphs: bool = Field(True, description="Report words mixing Latin with look-alike letters.")
    control_chars: bool = Field(True, description="Report control characters (terminal escapes).")


class HiddenTextScanner(Scanner):
    """Invisible, reordering and look-alike characters, each run with its span."""

    name = "hidden_text"
    options_model = HiddenTextOptions

    def __init__(self, options: ScannerOptions) -> None:
        super().__init__(options)
        assert isinstance(options, HiddenTextOptions)
        self.opts = options

    def scan(self, text: str, ctx: ScanContext) -> list[Detection]:
        found: list[Detection] = []
        if self.opts.control_chars:
            found += [Detection("control_char", 0.8, *m.span()) for m in _ASCII_CONTROL.finditer(text)]
        if text.isascii():
            return found
        if _HIDDEN.search(text):
            facts = _Facts.of(text)
            for m in _RUNS.finditer(text):
                detection = self._classify(text, m.start(), m.end(), facts)
                if detection is not None:
                    found.append(detection)
        if self.opts.homoglyphs:
            found += _mixed_script_words(text)
        found.sort(key=lambda d: d.start or 0)
        return found

    def _classify(self, text: str, start: int, end: int, facts: _Facts) -> Detection | None:
        run, o = text[start:end], self.opts
        first = ord(run[0])
        if 0xE0000 <= first <= 0xE007F:
            flag = start > 0 and text[start - 1] == _FLAG and run[-1] == _CANCEL_TAG
            return Detection("ascii_smuggling", 1.0, start, end) if o.ascii_smuggling and not flag else None
        if 0xFE00 <= first <= 0xFE0F or first >= 0xE0100:
            return Detection("variation_selectors", 1.0, start, end) if o.variation_selectors else None
        if run[0] in _BIDI_CHARS:
            score = _bidi_score(run, facts) if o.bidi else 0.0
            return Detection("bidi_control", score, start, end) if score else None
        if not o.zero_width or (start == 0 and run == "\ufeff") \
                or facts.zero_width < o.min_zero_width:
            return None
        if set(run) <= _SEPARATORS:
            before = text[start - 1] if start else ""
            after = text[end] if end < len(text) else ""
            if _needs_joiner(before) or _needs_joiner(after):
                return None
        return Detection("zero_width", min(1.0, 0.4 + 0.15 * len(run)), start, end)


_BIDI_CHARS = frozenset(_BIDI)
_OVERRIDES = frozenset("\u202d\u202e")
_OPENERS = frozenset("\u202a\u202b\u2066\u2067\u2068")
_CLOSERS = frozenset("\u202c\u2069")
_SEPARATORS = frozenset("\u200b\u200c\u200d")


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the verdict on one run depends on in the rest of the text (computed once a scan)."""

    rtl: bool  # the text has right-to-left letters
    bidi_balanced: bool  # as many closers as embeddings, overrides and isolates
    zero_width: int  # zero-width characters in the text

    @classmethod
    def of(cls, text: str) -> _Facts:
        opened = sum(text.count(c) for c in _OVERRIDES | _OPENERS)
        return cls(_RTL_LETTER.search(text) is not None,
                   opened == sum(text.count(c) for c in _CLOSERS), len(_ZW_CHAR.findall(text)))


def _bidi_score(run: str, facts: _Facts) -> float:
    """Overrides always count; embeddings and isolates fully in text with no right-to-left
    letters (half otherwise); closers only when they do not match the openers; marks (LRM, RLM,
    ALM) half, and only without right-to-left letters."""
    chars = set(run)
    if chars & _OVERRIDES:
        return 1.0
    if chars & _OPENERS:
        return 0.5 if facts.rtl else 1.0
    if chars & _CLOSERS and not facts.bidi_balanced:
        return 1.0
    return 0.0 if facts.rtl or not chars - _CLOSERS else 0.5


@hookimpl
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    register(HiddenTextScanner)
