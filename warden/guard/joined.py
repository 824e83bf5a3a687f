"""Many texts read as one, and what is found there mapped back to each text.

The scanners of every field read a request's texts in one go rather than one call each (a tool
list has dozens of short strings; the NER engine costs milliseconds a call): :func:`batch` joins
them with a blank line and a mark between. A value split across messages ("my card is 4111 1111" then
"1111 1111") matches in neither message alone: :func:`seams` joins the ends of consecutive
messages directly, as a model asked to put them together would, so that a value across a seam
is found whole. Only the characters near each seam are read again: a message longer than twice
``window`` gives its first and last ``window`` characters, so the work stays linear.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

# Between texts read together: blank lines around a mark that no pattern takes into a value, so
# that nothing runs on from one text into the next (a key block's base64 would over whitespace).
GAP = "\n\n\u00b6\n\n"


@dataclass(slots=True, frozen=True)
class Piece:
    """``length`` characters of text number ``part``, from ``start`` in it and ``at`` in the
    joined text; pieces of one ``chain`` are joined with nothing between them."""

    part: int
    start: int
    at: int
    length: int
    chain: int


@dataclass(slots=True, frozen=True)
class Joined:
    text: str
    pieces: tuple[Piece, ...]
    ats: tuple[int, ...]  # each piece's ``at``, for bisecting

    def locate(self, start: int, end: int) -> list[tuple[Piece, int, int]]:
        """The pieces ``[start, end)`` of the joined text touches, with the span in each (as
        offsets into its own text); the gaps between chains belong to none."""
        i = max(0, bisect.bisect_right(self.ats, start) - 1)
        out: list[tuple[Piece, int, int]] = []
        while i < len(self.pieces) and self.pieces[i].at < end:
            p = self.pieces[i]
            s, e = max(start, p.at), min(end, p.at + p.length)
            if s < e:
                out.append((p, p.start + s - p.at, p.start + e - p.at))
            i += 1
        return out


class _Builder:
    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.pieces: list[Piece] = []
        self.size = 0
        self.chain = 0

    def add(self, part: int, text: str, start: int, end: int) -> None:
        if end > start:
            self.pieces.append(Piece(part, start, self.size, end - start, self.chain))
            self.chunks.append(text[start:end])
            self.size += end - start

    def gap(self) -> None:
        if self.chunks and self.chunks[-1] != GAP:
            self.chunks.append(GAP)
            self.size += len(GAP)
        self.chain += 1

    def build(self) -> Joined:
        return Joined("".join(self.chunks), tuple(self.pieces),
                      tuple(p.at for p in self.pieces))


def batch(texts: Sequence[tuple[int, str]]) -> Joined:
    """``(part, text)`` pairs joined with a ``GAP`` between each."""
    b = _Builder()
    for part, text in texts:
        b.gap()
        b.add(part, text, 0, len(text))
    return b.build()


def seams(sequences: Sequence[Sequence[tuple[int, str]]], window: int) -> Joined:
    """The texts of each sequence joined end to start, a long text giving only its ends; a
    ``GAP`` between sequences and where a long text's middle is left out."""
    b = _Builder()
    for texts in sequences:
        b.gap()
        for n, (part, text) in enumerate(texts):
            first, last = n == 0, n == len(texts) - 1
            if len(text) <= 2 * window:
                b.add(part, text, 0, len(text))
                continue
            if not first:
                b.add(part, text, 0, window)
            b.gap()
            if not last:
                b.add(part, text, len(text) - window, len(text))
    return b.build()


def crosses(found: list[tuple[Piece, int, int]]) -> bool:
    """Whether a match runs over a seam: two pieces of one chain."""
    return len({p.chain for p, _, _ in found}) < len(found)
