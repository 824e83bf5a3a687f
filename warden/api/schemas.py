"""Request bodies of the OpenAI-compatible API, validated at the edge.

Unknown fields are allowed and passed through unchanged: upstreams add parameters faster than
any gateway, and a gateway that drops them breaks its users.

The fields Warden knows are checked strictly, as OpenAI checks them: ``"n": "128"`` or
``"stream": "yes"`` is a 400 naming the parameter, never a value coerced here and forwarded
as sent. A lenient upstream would honour the string that the limits never counted; numbers
(temperature, top_p, ...) still take JSON integers, as OpenAI's do.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from warden.errors import InvalidRequest

MAX_OUTPUT_TOKENS = 1_000_000
"""The most completion tokens a request may ask for: above any model's output, and small enough
that a typo is not reserved as a budget's worth of tokens."""

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class ContentPart(_Body):
    """One part of a message's content: its ``type``, and its ``text`` a string where it has
    one (other kinds of parts are passed through as they came)."""

    type: str
    text: str | None = None


class Message(_Body):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class _Sampling(_Body):
    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: Annotated[int, Field(ge=-2**63, le=2**63 - 1)] | None = None
    user: str | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _top_logprobs_needs_logprobs(self) -> ChatRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        return self


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    # The upstream generates best_of answers and bills them all: the limits count it like n.
    best_of: Annotated[int, Field(ge=1, le=20)] | None = None
    echo: bool | None = None
    suffix: str | None = None


class EmbeddingRequest(_Body):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    # No embedding model has more than a few thousand; a huge value is a mistake, not a request.
    dimensions: Annotated[int, Field(ge=1, le=65536)] | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _non_empty(self) -> EmbeddingRequest:
        if isinstance(self.input, list) and not self.input:
            raise ValueError("input must not be empty")
        return self


SCHEMAS: dict[str, type[_Body]] = {
    "chat": ChatRequest, "completion": CompletionRequest, "embedding": EmbeddingRequest,
}


# The steps of an error's location that name a member of a union, not a field: "str",
# "list[str]", "constrained-int", "function-after[...]" (a field named "stream" is a field).
_UNION_MEMBER = re.compile(r"(str|int|float|bool|none)$|(list|dict|literal|nullable)\[|"
                           r"(function|constrained)-")


def _param(loc: tuple[int | str, ...]) -> str | None:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _UNION_MEMBER.match(part):
            out += f".{part}" if out else part
    return out or None


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "a boolean",
             "string_type": "a string", "list_type": "an array", "dict_type": "an object",
             "model_type": "an object", "none_required": "null"}


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, as OpenAI's messages say it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def validate(schema: type[_Body], body: Any) -> _Body:
    """Validate a parsed JSON body; a failure is a 400 naming the offending parameter."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = _param(tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = f"'{param}' is required"
            raise InvalidRequest(f"Missing required parameter: {msg}.", param=param,
                                 code="missing_required_parameter") from None
        where = f"'{param}'" if param else "the body"
        expected = _EXPECTED.get(err["type"])
        if expected is not None:
            raise InvalidRequest(f"Invalid type for {where}: expected {expected}, but got "
                                 f"{_json_type(err['input'])} instead.", param=param,
                                 code="invalid_type") from None
        raise InvalidRequest(f"Invalid value for {where}: {msg}.", param=param,
                             code="invalid_value") from None
