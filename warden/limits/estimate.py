"""What a request may use, estimated before it is sent: reserved first, settled to the actual
usage once the answer is in.

The estimate is what a request reserves against budgets and tokens per minute, so it leans
high: a request that uses more than it reserved spends past the limit, and many at once spend
past it many times. Tokens of a text are counted, without a tokenizer, as the larger of

- UTF-8 bytes / 4 (the usual rule for English and BPE tokenizers; it takes over for long
  words), and
- one per run of ASCII letters (BPE vocabularies hold common words whole), one per other
  visible ASCII character and tab or line break (digits, punctuation, controls: often a token
  each), one per run of two-byte characters (Latin accents, Greek, Cyrillic, Hebrew, Arabic)
  and a half per character in it, 1.5 per three-byte character (CJK, kana, Hangul, most
  symbols) and 3 per four-byte one (emoji, rare CJK),

which byte-level BPE tokenizers (GPT's, Llama 3's) rarely exceed: short words, single letters
or digits between spaces, punctuation runs, CJK and emoji each cost at least what they are
counted. English prose comes out near its real count, code and numbers up to about twice it.

The prompt is every string and number of the messages (names and tool calls too), the prompt
or the input (token ids count one each), MESSAGE_TOKENS of framing per message, IMAGE_TOKENS
per image part instead of its URL or data, and the tools, functions and response format with
their keys (they are billed as prompt too). Linear in the body's size, without recursion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from warden.observe.pricing import TokenPrice
from warden.providers.base import ApiKind

BYTES_PER_TOKEN = 4
IMAGE_TOKENS = 1500
"""One image, at high detail: a 2048 x 768 picture is 1,105 tokens for gpt-4o."""
MESSAGE_TOKENS = 3
"""The framing of one chat message (OpenAI's models add 3 or 4)."""
IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})


def _table(letter: int, space: int, mark: int, cont: int, two: int, three: int,
           four: int) -> bytes:
    """A bytes.translate table giving each UTF-8 byte the code of its class."""
    out = bytearray()
    for b in range(256):
        if chr(b).isascii() and chr(b).isalpha():
            out.append(letter)
        elif b == 0x20:
            out.append(space)
        else:
            out.append(mark if b < 0x80 else cont if b < 0xC0 else two if b < 0xE0
                       else three if b < 0xF0 else four)
    return bytes(out)


_CLASSES = _table(*b"L Mc234")  # M: a mark; c: a continuation byte; 2, 3, 4: a lead byte
_SCALARS = frozenset({int, float, bool, type(None)})


def _text_tokens(text: str) -> float:
    raw = text.encode("utf-8", "surrogatepass")
    classes = raw.translate(_CLASSES)
    # A run of letters starts wherever a letter follows something else (or nothing); the
    # patterns counted cannot overlap.
    words = classes.startswith(b"L") + classes.count(b" L") + classes.count(b"ML")
    pieces: float = words + classes.count(b"M")
    if not text.isascii():  # (O(1) in CPython) most text is ASCII: no more passes for it
        pieces += classes.count(b"cL")  # letters after a multi-byte character
        two = classes.count(b"2")
        # Two-byte characters: one per run (a word of Cyrillic, say) and a half per
        # character. A run starts at a lead byte that no other character's last byte precedes
        # (an approximation after a three- or four-byte character, counted high anyway).
        two_runs = two - classes.count(b"c2")
        pieces += two_runs + 0.5 * two + 1.5 * classes.count(b"3") + 3 * classes.count(b"4")
    return max(len(raw) / BYTES_PER_TOKEN, pieces)


def text_tokens(text: str) -> int:
    """The tokens ``text`` may take (see the module docstring)."""
    return math.ceil(_text_tokens(text))


def _tokens(value: Any, keys: bool) -> float:
    """The tokens of a parsed JSON value's strings and numbers (and its objects' keys too, with
    ``keys``), an image part counted as IMAGE_TOKENS; walked without recursion."""
    total = 0.0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += _text_tokens(item)
        elif isinstance(item, dict):
            if item.get("type") in IMAGE_PARTS:
                total += IMAGE_TOKENS
                continue
            if keys:
                total += sum(_text_tokens(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            types = set(map(type, item))  # in C: a list of token ids is not walked
            if types <= _SCALARS:
                total += len(item) - (item.count(None) if type(None) in types else 0)
            else:
                stack.extend(item)
        elif item is not None:  # a number (a prompt's token id, often), true or false
            total += 1
    return total


_PROMPTS: dict[str, str] = {"chat": "messages", "completion": "prompt", "embedding": "input"}
_SCHEMAS = ("tools", "functions", "response_format")  # billed as prompt, keys and all


def prompt_tokens(kind: ApiKind, body: dict[str, Any]) -> int:
    """About how many tokens the prompt holds, leaning high (at least 1)."""
    prompt = body.get(_PROMPTS[kind])
    total = _tokens(prompt, keys=False)
    if kind == "chat" and isinstance(prompt, list):
        total += MESSAGE_TOKENS * len(prompt)
    total += sum(_tokens(body.get(name), keys=True) for name in _SCHEMAS)
    return max(1, math.ceil(total))


def _count(value: Any) -> int | None:
    """A positive integer of the body, else None (validation has refused other types)."""
    return value if type(value) is int and value > 0 else None


def output_tokens(kind: ApiKind, body: dict[str, Any], default: int) -> int:
    """The most completion tokens the answer may hold: the larger of max_tokens and
    max_completion_tokens (or ``default``) per choice, times n or best_of."""
    if kind == "embedding":
        return 0
    limits = [c for c in (_count(body.get("max_completion_tokens")),
                          _count(body.get("max_tokens"))) if c is not None]
    per_choice = max(limits, default=default)
    choices = max((c for c in (_count(body.get("n")), _count(body.get("best_of")))
                   if c is not None), default=1)
    return per_choice * choices


def max_cost(prices: Iterable[TokenPrice | None], input_tokens: int, output_tokens: int) -> float:
    """The cost of these tokens at the dearest of ``prices`` (an unknown price counts 0)."""
    return max((p.cost(input_tokens, output_tokens) for p in prices if p is not None),
               default=0.0)
