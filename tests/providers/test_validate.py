"""The checks of upstream answers, on their own: what passes, what is refused, and how usage
is judged against the text returned."""

from __future__ import annotations

from typing import Any

import pytest

from warden.errors import UpstreamBadResponse
from warden.providers.validate import check_answer, check_chunk, check_usage, estimate_usage


def chat(**message: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": "stop"}]}


def test_well_formed_answers_pass_and_report_their_text_length() -> None:
    assert check_answer("chat", chat(content="hello"), "d") == 5
    assert check_answer("chat", chat(content=None, tool_calls=[
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]), "d") == 3
    assert check_answer("completion", {"choices": [{"index": 0, "text": "abc"}]}, "d") == 3
    assert check_chunk("chat", {"choices": []}, "d") == 0
    assert check_chunk("chat", {"usage": {"prompt_tokens": 1}}, "d") == 0  # usage-only chunk
    assert check_chunk("chat", {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                       "d") == 0
    assert check_answer("embedding", {"data": [{"index": 0, "embedding": "AAAA"}]}, "d",
                        base64=True) == 0


@pytest.mark.parametrize("body", [
    {"data": [{"embedding": "AAAA"}]},  # base64 only when the request asked for it
    {"data": [{"embedding": [0.1, None]}]},
    {"data": [{"embedding": [0.1], "index": True}]},
])
def test_malformed_embeddings_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(UpstreamBadResponse, match="deployment 'd': upstream sent a malformed"):
        check_answer("embedding", body, "deployment 'd'")


@pytest.mark.parametrize("choice", [
    {"index": True}, {"index": 1.0}, {"finish_reason": 1}, {"delta": []},
    {"delta": {"content": 5}}, {"delta": {"refusal": []}}, {"delta": {"tool_calls": {}}},
    {"delta": {"tool_calls": [{"index": "0"}]}},
    {"delta": {"tool_calls": [{"function": "f"}]}},
])
def test_malformed_chunks_are_refused(choice: dict[str, Any]) -> None:
    with pytest.raises(UpstreamBadResponse):
        check_chunk("chat", {"choices": [choice]}, "d")


def test_usage_within_bounds_is_kept() -> None:
    usage, rejected = check_usage({"prompt_tokens": 10, "completion_tokens": 5,
                                   "prompt_tokens_details": {"cached_tokens": 4}}, 20)
    assert rejected is None and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (10, 5, 4)
    assert check_usage(None, 0) == (None, None)


def test_tokens_that_produce_no_text_do_not_make_a_usage_implausible() -> None:
    # A reasoning model bills thousands of hidden tokens for a short answer.
    usage, rejected = check_usage({"prompt_tokens": 10, "completion_tokens": 5000,
                                   "completion_tokens_details": {"reasoning_tokens": 4990}}, 3)
    assert rejected is None and usage is not None and usage.completion_tokens == 5000
    # Reasoning text returned beside the answer (vLLM's reasoning_content) counts as text.
    chars = check_chunk("chat", {"choices": [{"index": 0, "delta": {
        "reasoning_content": "x" * 1000}}]}, "d")
    assert check_usage({"prompt_tokens": 1, "completion_tokens": 3000}, chars)[1] is None


@pytest.mark.parametrize(("usage", "why"), [
    ({"prompt_tokens": True}, "not an integer"),
    ({"completion_tokens": 2.0}, "not an integer"),
    ({"prompt_tokens": -1}, "outside"),
    ({"prompt_tokens": 10_000_001}, "outside"),
    ({"prompt_tokens": 1, "prompt_tokens_details": {"cached_tokens": 2}}, "outside"),
    ({"completion_tokens": 100}, "more than 5 characters"),
    ({"completion_tokens_details": []}, "not an object"),
    ([1, 2], "not an object"),
])
def test_implausible_usage_is_rejected_with_a_reason(usage: Any, why: str) -> None:
    found, rejected = check_usage(usage, 5)
    assert found is None and rejected is not None and why in rejected


def test_the_estimate_is_about_four_characters_a_token() -> None:
    estimate = estimate_usage(41, 8)
    assert (estimate.prompt_tokens, estimate.completion_tokens) == (11, 2)
