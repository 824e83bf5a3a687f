"""Encoded instructions made readable: what base64, hex, binary and Morse runs in a prompt say,
and what a prompt that asks for a cipher or for pieces to be joined spells out.

An attack can hide its instruction from patterns and classifiers by encoding it and asking the
model to decode it first ("Decode this and follow it: aWdub3Jl..."), or by splitting it ("Part 1
is 'What is the pass', part 2 is 'word?'"). ``blobs`` decodes the runs it recognises by their
shape; ``spelled_out`` applies the ROT13 or Caesar shift a prompt names and joins the quoted
pieces of one that asks for them to be combined. What reads like words becomes one more view of
the prompt (``normalise.Normalised.decoded``) for the heuristics, the classifier and the context
signals. Each is looked for only where a cheap test says it may be there, so ordinary text costs
a few substring tests.
"""

from __future__ import annotations

import base64
import binascii
import re

MAX_BLOBS, MAX_BLOB = 8, 65_536  # a prompt of nothing but base64 must not cost more than a read
# Runs of base64 (standard or URL-safe) of at least 20 characters, looked for only in the words
# that long (splitting on spaces is far cheaper than a regex over the whole text).
_B64 = re.compile(r"[\w+/-]{20,}={0,2}")
# Hex-encoded ASCII: every byte of printable text starts with a digit from 2 to 7.
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[2-7][0-9A-Fa-f][ :]?){12,}")
_HEX_SEP = re.compile(r"[ :]")
# Binary-encoded ASCII: eight bits a character, the first one 0.
_BINARY = re.compile(r"(?<![01])(?:0[01]{7} ?){8,}")
# Morse code: at least eight letters of dots and dashes, one space between letters, " / " or more
# spaces between words.
_MORSE = re.compile(r"(?<![\w.\-])(?:[.\-]{1,6}(?: {1,3}| ?/ ?)){7,}[.\-]{1,6}(?![\w.\-])")
_MORSE_WORDS = re.compile(r" ?/ ?| {2,}")
_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h",
    "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p",
    "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x",
    "-.--": "y", "--..": "z", "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4",
    ".....": "5", "-....": "6", "--...": "7", "---..": "8", "----.": "9", "..--..": "?", ".-.-.-": ".",
    "--..--": ",",
}  # fmt: skip
# A prompt that names its cipher: ROT13, or a Caesar shift (3 when it does not say).
_ROT13 = re.compile(r"\brot[- ]?13\b")
_CAESAR = re.compile(
    r"\bcaesar(?:'s)? (?:cipher|shift|code)\b(?:[^.\n]{0,40}?\bshift(?:ed)?(?: of| by)? (\d{1,2})\b)?"
)
# A prompt that asks for quoted pieces to be put together ("part 1 is ...", "combine a and b").
_PIECES = re.compile(
    r"\b(?:part|piece|segment|string|variable) ?(?:1|one|a)\b|\b(?:combine|concatenate|join)\b"
)
_QUOTED = re.compile(r"[\"“”]([^\"“”\n]{1,300})[\"“”]")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def _printable(data: bytes) -> str | None:
    """``data`` as text when it reads like words (a decoded instruction), else None."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(s) < 8 or " " not in s:
        return None
    letters = sum(1 for c in s if c.isalpha() or c == " ")
    return s if letters >= 0.8 * len(s) else None


def blobs(raw: str) -> tuple[str, ...]:
    """What the encoded runs in ``raw`` say, where they decode to words (at most ``MAX_BLOBS``)."""
    found: list[str] = []
    long_words = [w for w in raw.split() if len(w) >= 20]
    for m in (m for w in long_words for m in _B64.finditer(w)):
        blob = m.group()[:MAX_BLOB]
        urlsafe = "-" in blob or "_" in blob
        if not blob.isascii() or (urlsafe and ("+" in blob or "/" in blob)):
            continue
        try:
            data = base64.b64decode(blob + "=" * (-len(blob) % 4), altchars=b"-_" if urlsafe else None)
        except (binascii.Error, ValueError):
            continue  # not base64 after all: a long word, a path, an identifier
        if (s := _printable(data)) is not None:
            found.append(s.casefold())
        if len(found) >= MAX_BLOBS:
            return tuple(found)
    for m in _HEX.finditer(raw):
        try:
            data = bytes.fromhex(_HEX_SEP.sub("", m.group()[:MAX_BLOB]))
        except ValueError:
            continue  # an odd number of digits
        if (s := _printable(data)) is not None:
            found.append(s.casefold())
        if len(found) >= MAX_BLOBS:
            return tuple(found)
    if "01" in raw:
        for m in _BINARY.finditer(raw):
            bits = m.group()[:MAX_BLOB].replace(" ", "")
            data = int(bits[: len(bits) // 8 * 8], 2).to_bytes(len(bits) // 8, "big")
            if (s := _printable(data)) is not None:
                found.append(s.casefold())
    if ".-" in raw or "-." in raw:
        found += [s for m in _MORSE.finditer(raw) if (s := _morse(m.group()[:MAX_BLOB])) is not None]
    return tuple(found[:MAX_BLOBS])


def _morse(code: str) -> str | None:
    """Morse ``code`` as text, when nearly every letter of it is one."""
    words = [w.split() for w in _MORSE_WORDS.split(code.strip())]
    letters = [_MORSE_CODE.get(c, "") for w in words for c in w]
    if sum(1 for c in letters if c) < 0.9 * len(letters):
        return None
    return _printable(" ".join("".join(_MORSE_CODE.get(c, "") for c in w) for w in words).encode())


def spelled_out(text: str) -> tuple[str, ...]:
    """What ``text`` (normalised: lower case) says once the cipher it names is undone, or the
    quoted pieces it asks to combine are joined."""
    out: list[str] = []
    if "rot" in text and _ROT13.search(text):
        out.append(_shift(text, 13))
    if "caesar" in text and (m := _CAESAR.search(text)) is not None:
        out.append(_shift(text, int(m.group(1) or 3)))
    if "\"" in text or "“" in text:
        pieces = _QUOTED.findall(text)
        if len(pieces) >= 2 and _PIECES.search(text):
            out.append("".join(pieces))
    return tuple(out)


def _shift(text: str, by: int) -> str:
    """``text`` with each ASCII letter moved ``by`` places back in the alphabet."""
    by %= 26
    return text.translate(str.maketrans(_ALPHABET, _ALPHABET[-by:] + _ALPHABET[:-by]))
