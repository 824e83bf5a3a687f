"""Normalisation: undo the cheap tricks that hide an instruction from a pattern or a model.

``normalise`` gives the view every layer reads: NFKC, case-folded, invisible characters gone and
Unicode tag characters (invisible ASCII) made visible. Two more views exist only when the text
calls for them: the *revealed* view, when it shows signs of obfuscation (leetspeak and
look-alike letters mapped back, spaced-out letters "i g n o r e" joined), and the *decoded*
blobs, what encoded runs in it decode to (``decode``). The heuristics read every view,
the classifier the text and the decoded blobs; an instruction found only in a revealed view is
itself a signal.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from warden.guard.injection import decode
from warden.guard.text import CONFUSABLES

# Characters that render as nothing: zero-width, bidi controls, soft hyphen, variation selectors.
_INVISIBLE = dict.fromkeys(
    [
        0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0,
        *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), *range(0xFE00, 0xFE10),
    ]
)  # fmt: skip
# Unicode "tag" characters mirror ASCII invisibly (U+E0041 is an invisible "A"): make them visible.
_TAGS: dict[int, int | None] = {cp: cp - 0xE0000 for cp in range(0xE0020, 0xE007F)}
_TAGS.update({0xE0001: None, 0xE007F: None})
_CLEAN: dict[int, int | None] = {**_INVISIBLE, **_TAGS}
_HIDDEN = re.compile(  # the keys of _CLEAN, as ranges (a class of single characters is slow)
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\ufeff\uffa0\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufe00-\ufe0f\U000e0001\U000e0020-\U000e007f]"
)

# Cyrillic and Greek letters that look like Latin ones, as they read after case-folding.
_LOOKALIKE = str.maketrans({"\u0131": "i", **{k.casefold(): v.casefold() for k, v in CONFUSABLES.items()}})
_UNLEET = str.maketrans("013457@$|", "oieastasi")
_LEET_WORD = re.compile(r"(?<![\w@$|])[\w@$|]*[013457@$|][\w@$|]*")
_LETTER = re.compile(r"[^\W\d_]")
# Letters spaced out one separator apart; two or more spaces end a word ("i g n o r e  a l l").
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*+|]){2,}\w(?!\w)")
_SPACE_SEP = re.compile(r"[ .\-_*+|]")
# Signs of obfuscation, rare in ordinary text: two words in a row that mix letters with leet
# digits or symbols ("1gn0re 4ll", not "mp3 player"), four letters spaced out, or a Latin letter
# next to a Cyrillic or Greek one. Three searches: one alternation would be three times slower.
_LEET = "[013457@$|]"
# Each word is tried once from its first character (a search from every leet pair in a long word
# rescanned the rest of it each time: quadratic on "a@a@a@..."), then once more as the next word.
_LEET_PAIR = re.compile(
    rf"(?<!\S)(?=\S*?(?:[a-z]{_LEET}|{_LEET}[a-z]))\S++\s++(?=\S*?(?:[a-z]{_LEET}|{_LEET}[a-z]))")
_SPACED_HINT = re.compile(r"(?<!\w)\w[ .\-_*+|]\w[ .\-_*+|]\w[ .\-_*+|]\w(?!\w)")
_GREEK_CYRILLIC = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
_MIXED_SCRIPT = re.compile(r"[a-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][a-z]")


@dataclass(slots=True, frozen=True)
class Normalised:
    """The views of one text. ``text`` is what every layer reads; ``aligned`` says whether its
    character offsets are those of the original (then heuristic spans can be reported);
    ``revealed`` is the de-obfuscated view, or "" when the text shows no sign of obfuscation;
    ``decoded`` holds what encoded runs in it decode to (``decode.blobs``); ``hidden`` counts
    invisible characters."""

    text: str
    aligned: bool
    revealed: str
    decoded: tuple[str, ...]
    hidden: int


def normalise(raw: str, *, decode_blobs: bool = True) -> Normalised:
    """The views of ``raw``; cheap for plain ASCII text (the common case)."""
    if raw.isascii():
        text, hidden = raw.lower(), 0
    else:
        hidden = len(_HIDDEN.findall(raw))
        text = unicodedata.normalize("NFKC", raw.translate(_CLEAN) if hidden else raw).casefold()
    decoded = decode.blobs(raw) + decode.spelled_out(text) if decode_blobs else ()
    return Normalised(text, len(text) == len(raw), _reveal(text), decoded, hidden)


def _obfuscated(text: str) -> bool:
    if _LEET_PAIR.search(text) or _SPACED_HINT.search(text):
        return True
    return not text.isascii() and bool(_GREEK_CYRILLIC.search(text)) and bool(_MIXED_SCRIPT.search(text))


def _reveal(text: str) -> str:
    if not _obfuscated(text):
        return ""
    out = text if text.isascii() else text.translate(_LOOKALIKE)
    out = _LEET_WORD.sub(_unleet, out)
    out = _SPACED.sub(lambda m: _SPACE_SEP.sub("", m.group()), out)
    return "" if out == text else out


def _unleet(m: re.Match[str]) -> str:
    word = m.group()
    return word.translate(_UNLEET) if _LETTER.search(word) else word  # "1337" stays a number
