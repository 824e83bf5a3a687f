"""The pure-Python WordPiece tokenizer gives the ids of Hugging Face ``tokenizers``.

The expected ids were computed once with tokenizers 0.23.3 on the same tokenizer.json
(``Tokenizer.from_file(path)``, ``enable_truncation(max_length=256)``, ``no_padding()``,
``encode(text).ids``) and are hard-coded, so this test needs neither tokenizers nor the model.
"""

from __future__ import annotations

import pytest

from tests.embeddings import tokenizer_json
from warden.embeddings.wordpiece import TokenizerFileError, WordPiece


@pytest.fixture(scope="module")
def tok() -> WordPiece:
    return WordPiece.from_file(tokenizer_json(), max_length=256)


@pytest.mark.parametrize(("text", "ids"), [
    ("Hello, world!", [101, 7592, 1010, 2088, 999, 102]),
    # accents are stripped: cafe naive resume ang ##strom
    ("Café naïve résumé Ångström", [101, 7668, 15743, 13746, 17076, 15687, 102]),
    # every punctuation character is a word of its own
    ("don't stop-me now... (ok?) $5.00",
     [101, 2123, 1005, 1056, 2644, 1011, 2033, 2085, 1012, 1012, 1012, 1006, 7929, 1029, 1007,
      1002, 1019, 1012, 4002, 102]),
    # CJK ideographs are single words; 爱 and 门 are not in the vocabulary
    ("我爱北京天安门", [101, 1855, 100, 1781, 1755, 1811, 1820, 100, 102]),
    ("東京タワー", [101, 1879, 1755, 1709, 30262, 30265, 102]),
    # a word with an unknown character is one [UNK], not a partial match
    ("hello 😀world", [101, 7592, 100, 102]),
    ("supercalifragilisticexpialidocious",
     [101, 3565, 9289, 10128, 29181, 24411, 4588, 10288, 19312, 21273, 10085, 6313, 102]),
    # lowercased char by char: a word-final capital sigma becomes U+03C3 (29733), not U+03C2
    ("ΟΔΟΣ", [101, 1169, 29722, 29730, 29733, 102]),
    # special tokens written in the text keep their ids
    ("a [MASK] b[SEP]", [101, 1037, 103, 1038, 102, 102]),
    # whitespace of every kind splits; control and zero-width characters vanish
    ("tab\tnew\nline\u3000x\x07y\u200bz", [101, 21628, 2047, 2240, 1060, 2100, 2480, 102]),
    # words over max_input_chars_per_word (100) are [UNK]
    ("x" * 101, [101, 100, 102]),
    ("", [101, 102]),
], ids=["ascii", "accents", "punctuation", "cjk", "kana", "unknown-char", "subwords", "greek",
        "special-tokens", "whitespace-and-controls", "overlong-word", "empty"])
def test_ids_match_huggingface_tokenizers(tok: WordPiece, text: str, ids: list[int]) -> None:
    assert tok.encode(text) == ids


def test_truncation_keeps_cls_and_sep_within_max_length() -> None:
    short = WordPiece.from_file(tokenizer_json(), max_length=8)
    assert short.encode("the quick brown fox jumps over the lazy dog") == [
        101, 1996, 4248, 2829, 4419, 14523, 2058, 102]


def test_long_texts_are_truncated_to_256_tokens(tok: WordPiece) -> None:
    ids = tok.encode("word " * 300)
    assert len(ids) == 256
    assert (ids[0], ids[-1]) == (101, 102)
    assert len(set(ids[1:-1])) == 1
    assert len(tok.tokenize("word " * 300)) == 300


def test_batches_are_padded_to_the_longest_text(tok: WordPiece) -> None:
    batch = tok.encode_batch(["Hello, world!", "hi"])
    assert batch.lengths == [6, 3]
    assert batch.ids[1] == [101, 7632, 102, 0, 0, 0]
    assert batch.mask == [[1] * 6, [1, 1, 1, 0, 0, 0]]


def test_a_tokenizer_of_another_kind_is_refused() -> None:
    with pytest.raises(TokenizerFileError, match=r"expected a BERT tokenizer\.json"):
        WordPiece({"model": {"type": "BPE", "vocab": {}}, "normalizer": None})
