"""Fuzzing the OpenAI endpoints (/v1/chat/completions, /v1/completions, /v1/embeddings) with
hostile bodies and headers over real HTTP, on SQLite and PostgreSQL: whatever comes in, the
answer is a result or an OpenAI error (never a 5xx but an upstream's 502/503/504), every request
leaves exactly one record, and nothing is left in the recorder's spool."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    FUZZ,
    MODELS,
    UPSTREAM_MODELS,
    V1_POSTS,
    Exchange,
    Gate,
    shorten,
)
from tests.fuzz.strategies import (
    FIELDS,
    Body,
    Nested,
    Raw,
    bodies,
    header_values,
    headers,
    put,
    raw_bodies,
    valid_body,
)

SERVED = tuple(m for m in MODELS if m != "hostile")  # the hostile upstream has its own tests


def send_body(gate: Gate, body: Body, sent: dict[str, bytes]) -> Exchange:
    data = body.bytes()
    model = body.model
    return gate.send("POST", body.path, f"body {shorten(data)} and headers {sent}", data,
              {"content-type": "application/json", **sent},
              upstream=not isinstance(model, str) or model in UPSTREAM_MODELS)


SWEEP_VALUES = [Raw("NaN"), Raw("-Infinity"), Raw("1e400"), Raw("1" + "0" * 400), 2**64, "1",
                "0.5", "true", "\x00", "a\x00b", "\ud800", None, [], {}, Nested(256, False),
                Nested(1001, False), Nested(1001, True)]
"""What the sweep puts in every field: NaN, infinities and huge numbers as raw tokens, numbers
and booleans as strings, NUL, a lone surrogate, empty containers, nesting past the limits of
common parsers (255, 1000)."""


TYPED_FIELDS = {"temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed",
                "top_logprobs", "presence_penalty", "frequency_penalty", "best_of", "dimensions",
                "stream", "logprobs", "echo", "parallel_tool_calls",
                "stream_options.include_usage"}
"""Fields whose type is a number or a boolean: a string there (\"1\", \"true\") is a 400."""


@pytest.mark.parametrize("path", V1_POSTS)
def test_every_field_with_every_hostile_value(gate: Gate, path: str) -> None:
    """A deterministic sweep: each field of a valid body, alone, with each of SWEEP_VALUES, to
    a model served in-process and to one behind an upstream."""
    failures = []
    models = ("emb", "chat") if path == "/v1/embeddings" else ("echo", "chat")
    for field in FIELDS[path]:
        for i, value in enumerate(SWEEP_VALUES):
            for j, model in enumerate(models):  # each model streams for every other value
                stream = (i + j) % 2 == 1 and path != "/v1/embeddings"
                tree = put(valid_body(path, model, stream), field, value)
                try:
                    ex = send_body(gate, Body(path, tree, True, None), {})
                    assert not (field in TYPED_FIELDS and isinstance(value, str)) \
                        or ex.status == 400, f"a string in a typed field was taken: {ex.status}"
                except AssertionError as exc:
                    failures.append(f"{field}={value!r:.40} (model {model}, stream {stream}): "
                                    f"{str(exc).splitlines()[0]}")
    try:
        gate.settle()
    except AssertionError as exc:
        failures.append(str(exc))
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(failures[:60])


def test_chat_completions_answer_any_body_and_record_it(gate: Gate) -> None:
    @FUZZ
    @given(body=bodies("/v1/chat/completions", SERVED), sent=headers)
    def chat(body: Body, sent: dict[str, bytes]) -> None:
        send_body(gate, body, sent)

    chat()
    gate.settle()


def test_completions_and_embeddings_answer_any_body_and_record_it(gate: Gate) -> None:
    @FUZZ
    @given(body=bodies("/v1/completions", SERVED) | bodies("/v1/embeddings", SERVED),
           sent=headers)
    def other(body: Body, sent: dict[str, bytes]) -> None:
        send_body(gate, body, sent)

    other()
    gate.settle()


def test_bodies_that_are_not_json_get_a_clear_error_and_a_record(gate: Gate) -> None:
    @FUZZ
    @given(raw=raw_bodies, path=st.sampled_from(V1_POSTS),
           ctype=st.sampled_from([b"application/json", b"text/plain", b"", b"\x00"]))
    def raw_body(raw: bytes, path: str, ctype: bytes) -> None:
        ex = gate.send("POST", path, f"raw body {shorten(raw)}, content-type {ctype!r}", raw,
                       {"content-type": ctype}, upstream=True)
        assert ex.status != 200 or raw.strip().startswith((b"{", b"\xef\xbb\xbf")), \
            f"a body that is not a JSON object was served\n{ex.describe()}"

    raw_body()
    gate.settle()


def test_identity_and_tag_headers_with_nul_and_surrogates_are_recorded(gate: Gate) -> None:
    """Every header the record keeps, and the body fields it keeps (user, metadata), with NUL
    characters, lone surrogates, over-long values and a reused request id."""
    @FUZZ
    @given(sent=headers, user=header_values, stream=st.booleans(),
           path=st.sampled_from(V1_POSTS))
    def identity(sent: dict[str, bytes], user: bytes, stream: bool, path: str) -> None:
        text = user.decode("utf-8", "surrogatepass") if _utf8(user) else user.decode("latin-1")
        tree = {"/v1/chat/completions": {"model": "echo", "stream": stream,
                                         "messages": [{"role": "user", "content": text}]},
                "/v1/completions": {"model": "echo", "stream": stream, "prompt": text},
                "/v1/embeddings": {"model": "emb", "input": text}}[path]
        tree = {**tree, "user": text, "metadata": {"note": text}}
        send_body(gate, Body(path, tree, True, None), sent)

    identity()
    gate.settle()


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True
