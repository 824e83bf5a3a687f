"""Hashed n-gram features, shared by the training script and the scanner.

A text becomes a set of bucket indices: its word unigrams and bigrams (punctuation runs count
as words), each hashed with CRC-32 (stable across processes, unlike ``hash()``) into
``2**bits`` buckets. The model weighs each bucket present once and divides by the square root
of their count (a binary, L2-normalised vector). Word trigrams, sampled by hash, are the
shingles the similarity bank compares. (Character n-grams were tried: they cost three times as
much and did worse on the hard benign sets; obfuscation is undone by ``normalise`` instead.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zlib import crc32

TOKEN = re.compile(r"\w+|[^\w\s]+")
_SPACE = b" "


@dataclass(slots=True, frozen=True)
class Grams:
    """The n-gram hashes of one text, before bucketing."""

    words: list[int]  # unigram and bigram hashes
    trigrams: list[int]  # word trigram hashes (shingles)


def grams(text: str) -> Grams:
    """Hash the word n-grams of ``text`` (already normalised)."""
    toks = [t.encode("utf-8") for t in TOKEN.findall(text)]
    uni = [crc32(t) for t in toks]
    spaced = [_SPACE + t for t in toks]
    bi = [crc32(spaced[i + 1], uni[i]) for i in range(len(toks) - 1)]
    tri = [crc32(spaced[i + 2], bi[i]) for i in range(len(toks) - 2)]
    return Grams(uni + bi, tri)


def buckets(g: Grams, bits: int) -> set[int]:
    """The distinct buckets (of ``2**bits``) that the text's n-grams fall in."""
    mask = (1 << bits) - 1
    return {h & mask for h in g.words}


def shingles(g: Grams, sample: int) -> set[int]:
    """The text's word trigrams whose hash is divisible by ``sample`` (a consistent sample)."""
    return {h for h in g.trigrams if h % sample == 0}
