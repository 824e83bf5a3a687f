"""The token estimate that requests reserve: never far below what a tokenizer makes of a text,
whatever its shape, and near the real count for plain English."""

from __future__ import annotations

from typing import Any

import pytest

from warden.limits.estimate import IMAGE_TOKENS, output_tokens, prompt_tokens, text_tokens

# Texts made to be cheap for a characters-per-token rule and dear for a tokenizer, with a count
# that GPT-4's tokenizer (cl100k) does not go below: its pre-tokenizer splits words, single
# characters after a space, line breaks and runs of three digits apart, and it has no tokens
# of several emoji or control characters; two CJK characters a token is generous.
CHEAP_TRICKS = {
    "short words": ("a b c d e f g h " * 50, 400),
    "single digits": ("1 2 3 4 5 6 7 8 " * 50, 400),
    "punctuation": ("! ? ; : , . ( ) " * 50, 400),
    "long number": ("9876543210" * 40, 400 // 3),
    "CJK": ("你好世界我们的数据" * 40, 180),
    "emoji": ("😀🦩🧬🛸" * 40, 160),
    "accented letters, spaced": ("é ü ñ ø " * 50, 200),
    "control characters": ("\x01\x02\x03\x04" * 100, 200),
    "line breaks": ("a\nb\n" * 100, 400),
}


@pytest.mark.parametrize("name", CHEAP_TRICKS)
def test_texts_made_cheap_for_a_character_count_are_counted_at_their_token_cost(name: str) -> None:
    text, least_tokens = CHEAP_TRICKS[name]
    assert text_tokens(text) >= least_tokens
    assert text_tokens(text) >= len(text.split())  # the fake upstream's count: one a word
    assert text_tokens(text) >= len(text.encode()) / 4


def test_english_prose_is_counted_near_its_real_count() -> None:
    # 10 tokens for GPT-4's tokenizer.
    assert 10 <= text_tokens("The quick brown fox jumps over the lazy dog.") <= 13
    prose = ("Warden sits in front of the models and records every request it serves, so that "
             "costs, latencies and findings can be read back later. ") * 20
    words = len(prose.split())
    assert words <= text_tokens(prose) <= 1.6 * words


def chat(*messages: Any, **more: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **more}


def test_a_prompt_counts_token_ids_images_tools_and_each_message_s_framing() -> None:
    ids = {"model": "m", "prompt": [[7] * 5000]}
    assert prompt_tokens("completion", ids) >= 5000
    assert prompt_tokens("embedding", {"model": "m", "input": [[7] * 300, [8] * 300]}) >= 600
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 90_000}}
    with_image = prompt_tokens("chat", chat({"role": "user", "content": [image]}))
    assert IMAGE_TOKENS <= with_image < IMAGE_TOKENS + 10  # the image, not its base64 text
    empty = prompt_tokens("chat", chat(*[{"role": "user", "content": ""}] * 1000))
    assert empty >= 4000  # 3 of framing and the role: what an empty message costs
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(100)}}}}
    assert prompt_tokens("chat", chat({"role": "user", "content": "hi"}, tools=[tool])) >= 400


def test_the_output_estimate_takes_the_larger_limit_times_the_choices() -> None:
    assert output_tokens("chat", chat(max_tokens=100000, max_completion_tokens=1), 1024) == 100000
    assert output_tokens("chat", chat(n=3), 1024) == 3 * 1024
    assert output_tokens("completion", {"best_of": 5, "n": 2, "max_tokens": 10}, 1024) == 50
    assert output_tokens("embedding", {"input": "x"}, 1024) == 0


def test_the_estimate_is_linear_and_walks_deep_values_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert prompt_tokens("completion", {"prompt": deep}) == 1
    assert text_tokens("word " * 200_000) == 250_000  # bytes / 4 over the words
