"""A pure-Python BERT WordPiece tokenizer that gives the same ids as Hugging Face ``tokenizers``.

It reads a ``tokenizer.json`` of the BERT family (``BertNormalizer`` + ``BertPreTokenizer`` +
``WordPiece`` + a ``[CLS] … [SEP]`` template) and reproduces, in order:

1. added tokens (``[CLS]``, ``[MASK]``, …) found in the raw text keep their own id, as in
   ``tokenizers`` and sentence-transformers;
2. normalisation: drop NUL, U+FFFD and control characters, whitespace becomes a space, spaces
   around CJK ideographs, strip accents (NFD, drop non-spacing marks), lowercase char by char;
3. pre-tokenisation: split on whitespace, each punctuation character a word of its own;
4. WordPiece: greedy longest match, ``##`` continuation, one ``[UNK]`` for a word that cannot
   be matched or is longer than ``max_input_chars_per_word``;
5. ``[CLS]`` + ids truncated to ``max_length - 2`` + ``[SEP]``.

The file's own truncation and padding settings are ignored: the caller picks ``max_length`` and
batches are padded to their longest sequence.

The ids equal those of ``tokenizers`` for every code point assigned up to Unicode 8.0; the ~500
characters added since (new punctuation and combining marks) may split differently, because
``tokenizers`` classifies characters with Unicode 8.0 tables and Python with its own, newer ones.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Rust's char::is_whitespace (Unicode White_Space), which tokenizers uses; Python's str.split()
# differs on a few control characters.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPLIT_WHITESPACE = re.compile("[" + re.escape("".join(sorted(_WHITESPACE))) + "]+")

# The CJK ideograph blocks that BERT (and tokenizers' BertNormalizer) surrounds with spaces.
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


class TokenizerFileError(ValueError):
    """The tokenizer.json is not a BERT WordPiece tokenizer this module can reproduce."""


@dataclass(slots=True, frozen=True)
class Batch:
    """Token ids of several texts, padded to the longest; ``mask`` is 1 on real tokens."""

    ids: list[list[int]]
    mask: list[list[int]]
    lengths: list[int]


def _is_control(ch: str) -> bool:
    # Cc, Cf, Co and Cs; tokenizers keeps unassigned code points (Cn).
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK)


class WordPiece:
    """BERT WordPiece tokenization, configured from a ``tokenizer.json``."""

    def __init__(self, config: dict[str, Any], *, max_length: int = 256) -> None:
        if max_length < 2:
            raise ValueError("max_length must leave room for [CLS] and [SEP]")
        model = config.get("model") or {}
        norm = config.get("normalizer") or {}
        pre = config.get("pre_tokenizer") or {}
        if model.get("type") != "WordPiece" or norm.get("type") != "BertNormalizer" \
                or pre.get("type") != "BertPreTokenizer":
            raise TokenizerFileError(
                "expected a BERT tokenizer.json (WordPiece model, BertNormalizer, "
                f"BertPreTokenizer), got model={model.get('type')!r}, "
                f"normalizer={norm.get('type')!r}, pre_tokenizer={pre.get('type')!r}"
            )
        self.vocab: dict[str, int] = dict(model["vocab"])
        self.max_length = max_length
        self._prefix: str = model.get("continuing_subword_prefix") or "##"
        self._max_chars: int = int(model.get("max_input_chars_per_word") or 100)
        self.unk_id = self.vocab[model.get("unk_token") or "[UNK]"]
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = int((config.get("padding") or {}).get("pad_id", self.vocab.get("[PAD]", 0)))
        self._clean = bool(norm.get("clean_text", True))
        self._cjk = bool(norm.get("handle_chinese_chars", True))
        self._lowercase = bool(norm.get("lowercase", True))
        strip = norm.get("strip_accents")
        self._strip_accents = self._lowercase if strip is None else bool(strip)
        # Only raw-text added tokens are supported; BERT's special tokens are all of that kind.
        self._added = {t["content"]: int(t["id"]) for t in config.get("added_tokens") or []
                       if not t.get("normalized", False)}
        self._added_re = re.compile("|".join(
            re.escape(t) for t in sorted(self._added, key=len, reverse=True))) if self._added else None

    @classmethod
    def from_file(cls, path: Path, *, max_length: int = 256) -> WordPiece:
        """Load a ``tokenizer.json``."""
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TokenizerFileError(f"cannot read tokenizer file {path}: {exc}") from exc
        return cls(config, max_length=max_length)

    # -- steps -------------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """BertNormalizer: clean, space out CJK, strip accents, lowercase."""
        out: list[str] = []
        for ch in text:
            if self._clean:
                if ch in "\x00\ufffd" or _is_control(ch):
                    continue
                if ch in _WHITESPACE or unicodedata.category(ch) == "Zs":
                    out.append(" ")
                    continue
            if self._cjk and _is_cjk(ch):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = "".join(out)
        if self._strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text)
                           if unicodedata.category(c) != "Mn")
        if self._lowercase:
            # Char by char, like Rust's char::to_lowercase: no final-sigma rule.
            text = "".join(c.lower() for c in text)
        return text

    def words(self, normalized: str) -> list[str]:
        """BertPreTokenizer: whitespace-separated words, punctuation split off one char each."""
        out: list[str] = []
        for chunk in _SPLIT_WHITESPACE.split(normalized):
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punctuation(ch):
                    if i > start:
                        out.append(chunk[start:i])
                    out.append(ch)
                    start = i + 1
            if start < len(chunk):
                out.append(chunk[start:])
        return out

    def wordpiece(self, word: str) -> list[int]:
        """Greedy longest-match-first subwords of one word; ``[UNK]`` when it cannot match."""
        if len(word) > self._max_chars:
            return [self.unk_id]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found: int | None = None
            while start < end:
                piece = word[start:end] if start == 0 else self._prefix + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    # -- whole texts -------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """The ids of a text without special tokens and without truncation."""
        ids: list[int] = []
        pos = 0
        matches = self._added_re.finditer(text) if self._added_re else iter(())
        for m in matches:
            ids.extend(self._plain(text[pos:m.start()]))
            ids.append(self._added[m.group()])
            pos = m.end()
        ids.extend(self._plain(text[pos:]))
        return ids

    def _plain(self, text: str) -> list[int]:
        return [i for w in self.words(self.normalize(text)) for i in self.wordpiece(w)]

    def encode(self, text: str) -> list[int]:
        """``[CLS]`` + the text's ids, truncated to ``max_length`` in all, + ``[SEP]``."""
        return [self.cls_id, *self.tokenize(text)[: self.max_length - 2], self.sep_id]

    def encode_batch(self, texts: Sequence[str]) -> Batch:
        """Encode texts and pad them with ``pad_id`` to the longest one."""
        return pad([self.encode(t) for t in texts], self.pad_id)


def pad(seqs: Sequence[list[int]], pad_id: int) -> Batch:
    """Pad id sequences to the longest one."""
    width = max((len(s) for s in seqs), default=0)
    return Batch(
        ids=[s + [pad_id] * (width - len(s)) for s in seqs],
        mask=[[1] * len(s) + [0] * (width - len(s)) for s in seqs],
        lengths=[len(s) for s in seqs],
    )
