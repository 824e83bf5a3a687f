"""Hypothesis strategies for hostile input: JSON bodies built from valid OpenAI requests with
fields mutated (wrong types, numbers and booleans as strings, huge integers, NaN and Infinity as
raw tokens, nesting past 1,000 levels, sizes up to and past the body limit, NUL characters and
lone surrogates), raw bytes, header values, and query strings.

Bodies are written by ``encode`` rather than ``json.dumps`` so that they can hold what
``json.dumps`` refuses to write: raw tokens (``Raw``) and nesting deeper than Python's recursion
limit (``Nested``)."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.harness import BODY_LIMIT


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is: NaN, Infinity, 1e400, a huge integer..."""

    text: str


@dataclass(frozen=True)
class Nested:
    """``depth`` levels of arrays or objects around ``leaf``, written without recursion."""

    depth: int
    objects: bool
    leaf: Any = 1

    def __repr__(self) -> str:
        return f"Nested({self.depth} {'objects' if self.objects else 'arrays'}, {self.leaf!r})"


PAD = "\x01pad\x01"
"""A string that ``encode`` stretches so the body reaches a chosen size."""


def _write(value: Any, out: list[str], ascii_only: bool) -> None:
    if isinstance(value, Raw):
        out.append(value.text)
    elif isinstance(value, Nested):
        out.append('{"a":' * value.depth if value.objects else "[" * value.depth)
        _write(value.leaf, out, ascii_only)
        out.append("}" * value.depth if value.objects else "]" * value.depth)
    elif isinstance(value, dict):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            out.append(("," if i else "") + json.dumps(str(k), ensure_ascii=ascii_only) + ":")
            _write(v, out, ascii_only)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _write(v, out, ascii_only)
        out.append("]")
    else:
        out.append(json.dumps(value, ensure_ascii=ascii_only, allow_nan=True))


def encode(value: Any, ascii_only: bool = True, size: int | None = None) -> bytes:
    """``value`` as JSON: lone surrogates as \\u escapes when ``ascii_only``, else as the raw
    (invalid) UTF-8 bytes a careless client would send. With ``size``, the first ``PAD`` string
    grows so the body is ``size`` bytes long where it can be."""
    out: list[str] = []
    _write(value, out, ascii_only)
    text = "".join(out)
    marker = json.dumps(PAD, ensure_ascii=ascii_only)
    if marker in text:
        grow = max(0, (size or 0) - (len(text.encode("utf-8", "surrogatepass")) - len(marker) + 2))
        text = text.replace(marker, '"' + "a" * grow + '"', 1)
    return text.encode("utf-8", "surrogatepass")


# -- strings --------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "", " ", "\x00", "a\x00b", "\x00" * 40, "\ud800", "\udfff", "x\udbffy", "\udc00\ud800",
    "\ufeff", "\u2028\u2029", "\u202e", "\ufffd", "\U0001f600", "e\u0301", "\x7f\x1b[31m",
    "null", "true", "1", "-1", "1e309", "NaN", "${HOME}", "%s%n", "' OR 1=1 --", "<script>",
    "../../etc/passwd", "a" * 5000, "ab" * 20000,
]
hostile_text = (st.sampled_from(SPECIAL_STRINGS)
                | st.text(st.characters(exclude_categories=()), max_size=30)
                | st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=8))
"""Strings with NUL, control characters, lone surrogates, and the merely odd."""


# -- JSON values ----------------------------------------------------------------------------

RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e308", "-1e308", "1e309", "-1e309", "1e400",
               "1e-400", "-0", "-0.0", "1E+2", "0.1e1", "18446744073709551616",
               "-9223372036854775809", "1" + "0" * 400, "-" + "9" * 400]
huge_ints = st.sampled_from([2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30)])
numbers_as_strings = (st.integers(-5, 10**6).map(str)
                      | st.floats(allow_nan=True, allow_infinity=True).map(repr)
                      | st.sampled_from(["0.5", " 1 ", "1_000", "0x10", "1e3", "inf", "-inf",
                                         "nan", "Infinity", "+1", "٣"]))
booleans_as_strings = st.sampled_from(["true", "false", "True", "FALSE", "yes", "no", "1", "0",
                                       "on", ""])
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | huge_ints
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(RAW_NUMBERS).map(Raw)
           | numbers_as_strings | booleans_as_strings | hostile_text)
deep = st.builds(Nested, st.sampled_from([64, 255, 256, 999, 1000, 1001, 1025, 3000, 10000]),
                 st.booleans(), st.sampled_from([1, "x", None, Raw("NaN"), [], {}]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(hostile_text, inner, max_size=4),
                      max_leaves=10) | deep
"""Any JSON value a hostile client could write, deep nesting included."""


# -- OpenAI bodies --------------------------------------------------------------------------

CHAT_PATHS = [
    "model", "messages", "messages.0", "messages.0.role", "messages.0.content",
    "messages.0.content.0", "messages.0.content.0.text", "messages.0.content.0.type",
    "messages.0.name", "messages.1", "messages.1.tool_calls", "messages.1.tool_calls.0.function",
    "stream", "stream_options", "stream_options.include_usage", "temperature", "top_p",
    "max_tokens", "max_completion_tokens", "n", "stop", "stop.0", "user", "metadata",
    "metadata.team", "response_format", "response_format.type", "response_format.json_schema",
    "tools", "tools.0", "tools.0.function.name", "tools.0.function.parameters", "tool_choice",
    "seed", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
    "logit_bias.50256", "parallel_tool_calls", "guard", "x-unknown",
]
COMPLETION_PATHS = ["model", "prompt", "prompt.0", "stream", "stream_options.include_usage",
                    "max_tokens", "temperature", "n", "echo", "suffix", "stop", "user",
                    "logprobs", "best_of", "seed", "metadata", "x-unknown"]
EMBEDDING_PATHS = ["model", "input", "input.0", "input.0.0", "dimensions", "encoding_format",
                   "user", "metadata", "x-unknown"]


def put(tree: Any, path: str, value: Any) -> Any:
    """``tree`` with ``value`` at the dotted ``path``, made where missing (digits index lists)."""
    head, _, rest = path.partition(".")
    if head.isdigit():
        items = list(tree) if isinstance(tree, list) else []
        i = int(head)
        while len(items) <= i:
            items.append({})
        items[i] = put(items[i], rest, value) if rest else value
        return items
    node = dict(tree) if isinstance(tree, dict) else {}
    node[head] = put(node.get(head), rest, value) if rest else value
    return node


@dataclass(frozen=True)
class Body:
    """A request body to send: the tree, how it is written, and the size it is padded to."""

    path: str
    tree: Any
    ascii_only: bool
    size: int | None

    def bytes(self) -> bytes:
        return encode(self.tree, self.ascii_only, self.size)

    @property
    def model(self) -> Any:
        return self.tree.get("model") if isinstance(self.tree, dict) else None


def valid_body(path: str, model: str, stream: bool) -> dict[str, Any]:
    if path == "/v1/chat/completions":
        return {"model": model, "stream": stream,
                "messages": [{"role": "user", "content": "hello there"}]}
    if path == "/v1/completions":
        return {"model": model, "stream": stream, "prompt": "hello there"}
    return {"model": model, "input": "hello there"}


FIELDS = {"/v1/chat/completions": CHAT_PATHS, "/v1/completions": COMPLETION_PATHS,
          "/v1/embeddings": EMBEDDING_PATHS}


@st.composite
def bodies(draw: st.DrawFn, path: str, models: tuple[str, ...]) -> Body:
    """A valid body for ``path`` and one of ``models`` with up to three fields mutated, sometimes
    padded to a size around the body limit."""
    tree: Any = valid_body(path, draw(st.sampled_from(models)), draw(st.booleans()))
    for _ in range(draw(st.integers(0, 3))):
        tree = put(tree, draw(st.sampled_from(FIELDS[path])), draw(values))
    size = None
    if draw(st.integers(0, 9)) == 0:  # one in ten: about as large as allowed, or just larger
        size = draw(st.sampled_from([BODY_LIMIT - 1, BODY_LIMIT, BODY_LIMIT + 1])
                    | st.integers(1, BODY_LIMIT))
        where = {"/v1/chat/completions": "messages.0.content", "/v1/completions": "prompt",
                 "/v1/embeddings": "input"}[path]
        tree = put(tree, draw(st.sampled_from([where, "user", "metadata.pad"])), PAD)
    return Body(path, tree, draw(st.booleans()), size)


# -- raw bodies -----------------------------------------------------------------------------

_VALID = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}]}'
raw_bodies = (st.binary(max_size=300)
              | st.text(st.characters(exclude_categories=()), max_size=200).map(
                  lambda s: s.encode("utf-8", "surrogatepass"))
              | st.integers(0, len(_VALID)).map(lambda n: _VALID[:n])
              | st.sampled_from([b"", b"null", b"[]", b"1", b'"x"', b"\xef\xbb\xbf" + _VALID,
                                 _VALID + b"garbage", _VALID + _VALID, b"\xff\xfe" + _VALID,
                                 _VALID.decode().encode("utf-16"), b"NaN", b"{" * 5000,
                                 b'{"model": "echo", "messages": "\xed\xa0\x80"}',
                                 b'{"model": "echo\x00", "messages": []}']))
"""Bodies that are not JSON, not UTF-8, or not one JSON document."""


# -- headers --------------------------------------------------------------------------------

def header_value(text: str) -> bytes:
    """``text`` as header bytes (lone surrogates as their UTF-8 bytes); CR and LF, which would
    end the header, become spaces."""
    return text.encode("utf-8", "surrogatepass").replace(b"\r", b" ").replace(b"\n", b" ")


HEADERS = ["x-warden-user", "x-warden-session", "x-request-id", "x-warden-tag-team",
           "x-warden-tag-a_b", "x-warden-tag-", "traceparent", "x-warden-guard", "authorization"]
header_values = (hostile_text.map(header_value) | st.binary(max_size=40).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    | st.sampled_from([b"fuzz-same-id", b"fuzz-same-id", b"a" * 9000]))
headers = st.dictionaries(st.sampled_from(HEADERS), header_values, max_size=4)
"""Identity, tag and trace headers with hostile values; ``fuzz-same-id`` reuses a request id."""


# -- query strings --------------------------------------------------------------------------

QUERY_VALUES = ["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e309", "-1", "0",
                "-0", "1.5", "9" * 400, "99999999999999999999", "\x00", "\ud800", "x" * 5000,
                "a:b", ":", "", "1h", "30d", "model", "block", "true", "0x10", " 1", "1e-400"]
QUERY_NAMES = ["since", "until", "range", "model", "deployment", "key", "team", "user",
               "session", "status", "q", "tag", "limit", "cursor", "bucket", "group_by",
               "percentiles", "action", "x"]
query_value = st.sampled_from(QUERY_VALUES) | hostile_text | numbers_as_strings


def query_string(pairs: list[tuple[str, str]]) -> str:
    """The pairs percent-encoded (lone surrogates as their UTF-8 bytes)."""
    return "&".join(f"{urllib.parse.quote_from_bytes(k.encode('utf-8', 'surrogatepass'))}="
                    f"{urllib.parse.quote_from_bytes(v.encode('utf-8', 'surrogatepass'))}"
                    for k, v in pairs)


queries = st.lists(st.tuples(st.sampled_from(QUERY_NAMES), query_value), max_size=5)
