"""Translation between the OpenAI chat wire format and Anthropic's Messages API.

No I/O here: ``to_messages_request`` turns an OpenAI chat body into a Messages request,
``from_messages_response`` turns a Messages answer into a ``chat.completion``, and
``StreamTranslator`` turns Messages stream events, one at a time, into
``chat.completion.chunk`` objects.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from warden.errors import InvalidRequest, UpstreamError, UpstreamStatus
from warden.providers.base import Usage
from warden.providers.validate import bad

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter"}


class UpstreamOverloaded(UpstreamStatus):
    """Anthropic's 529 (overloaded_error): retryable, and shown to the client as a 503."""

    type = "service_unavailable"

    def __init__(self, message: str, *, body: Any = None, retry_after: float | None = None) -> None:
        super().__init__(
            f"{message} (Anthropic is overloaded: retry later, or add a fallback model)",
            upstream_status=529, body=body, retry_after=retry_after,
        )
        self.status = 503
        self.code = "upstream_overloaded"


def finish_reason(stop_reason: Any) -> str:
    """The OpenAI finish_reason of an Anthropic stop_reason."""
    return _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _int(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


_PROMPT_COUNTS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def usage_wire(data: Any) -> Any:
    """The OpenAI wire usage of an Anthropic ``usage`` object.

    A count that is not a non-negative integer is passed on as it came, under the OpenAI key it
    stands for, so that the gateway's usage check (``warden.providers.validate``) rejects it
    and records why, as it does for any upstream."""
    if type(data) is not dict:
        return data
    for key in (*_PROMPT_COUNTS, "output_tokens"):
        value = data.get(key)
        if value is not None and (type(value) is not int or value < 0):
            return {"completion_tokens" if key == "output_tokens" else "prompt_tokens": value}
    return usage_of(data).to_wire()


def usage_of(data: Any) -> Usage:
    """Token usage of an Anthropic ``usage`` object; cache reads and writes count as prompt."""
    if not isinstance(data, dict):
        return Usage()
    cached = _int(data.get("cache_read_input_tokens"))
    prompt = (_int(data.get("input_tokens")) + cached
              + _int(data.get("cache_creation_input_tokens")))
    return Usage(prompt_tokens=prompt, completion_tokens=_int(data.get("output_tokens")),
                 cached_tokens=cached)


# --- requests: OpenAI chat -> Messages -------------------------------------------------------

def to_messages_request(body: dict[str, Any], *, default_max_tokens: int) -> dict[str, Any]:
    """The Messages request for an OpenAI chat body; InvalidRequest for what cannot be said."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequest("The anthropic provider returns a single choice; set 'n' to 1.",
                             param="n")
    if body.get("logprobs"):
        raise InvalidRequest("The anthropic provider cannot return logprobs; remove 'logprobs'.",
                             param="logprobs")
    system, messages = _messages(body.get("messages"))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out: dict[str, Any] = {"model": body.get("model"), "max_tokens": limit, "messages": messages}
    if system:
        out["system"] = system
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or ())
    if any(stops):
        out["stop_sequences"] = [s for s in stops if s]
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if body.get("stream"):
        out["stream"] = True
    return out


def _messages(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the alternating user/assistant turns of OpenAI messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages or ()):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"Each message must be an object; '{where}' is not.", param=where)
        role = m.get("role")
        if role in ("system", "developer"):
            text = "\n".join(b["text"] for b in _blocks(m.get("content"), where, images=False))
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _blocks(m.get("content"), where, images=True)
        elif role == "assistant":
            blocks = _blocks(m.get("content"), where, images=False) + _tool_uses(m, where)
        elif role == "tool":
            role, blocks = "user", [_tool_result(m, where)]
        else:
            raise InvalidRequest(
                f"Role '{role}' is not supported by the anthropic provider; send tool results as "
                "role 'tool' with the 'tool_call_id' they answer.", param=f"{where}.role")
        if not blocks:
            continue
        # Anthropic wants strict alternation: consecutive turns of one role become one turn.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return "\n\n".join(system), turns


def _blocks(content: Any, where: str, *, images: bool) -> list[dict[str, Any]]:
    """Text (and, for users, image) blocks of an OpenAI message content."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if isinstance(text, str) and text:
                out.append({"type": "text", "text": text})
        elif kind == "image_url" and images:
            out.append(_image(part, f"{where}.content[{j}]"))
        else:
            allowed = "text or image_url" if images else "text"
            raise InvalidRequest(
                f"Content part type '{kind}' is not supported here by the anthropic provider; "
                f"send {allowed} parts.", param=f"{where}.content[{j}]")
    return out


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if isinstance(url, str) and url.startswith("data:"):
        head, comma, data = url[5:].partition(",")
        media, _, encoding = head.partition(";")
        if comma and media and encoding == "base64":
            return {"type": "image",
                    "source": {"type": "base64", "media_type": media, "data": data}}
    elif isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("An image_url must be an http(s) URL or a data URL such as "
                         "'data:image/png;base64,<data>'.", param=f"{where}.image_url.url")


def _tool_uses(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j, call in enumerate(message.get("tool_calls") or ()):
        param = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(fn, dict) and isinstance(fn.get("name"), str)
                and isinstance(call.get("id"), str)):
            raise InvalidRequest("A tool call needs an 'id' and a 'function' with a 'name'.",
                                 param=param)
        args = fn.get("arguments") or "{}"
        try:
            parsed = orjson.loads(args) if isinstance(args, str) else args
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest(
                "Tool call arguments must be a JSON object encoded as a string; send back the "
                "arguments the model produced.", param=f"{param}.function.arguments")
        out.append({"type": "tool_use", "id": call["id"], "name": fn["name"], "input": parsed})
    return out


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_id = message.get("tool_call_id")
    if not isinstance(tool_id, str) or not tool_id:
        raise InvalidRequest("A 'tool' message needs the 'tool_call_id' of the call it answers.",
                             param=f"{where}.tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id}
    text = "\n".join(b["text"] for b in _blocks(message.get("content"), where, images=False))
    if text:
        block["content"] = text
    return block


def _tool(tool: Any, i: int) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise InvalidRequest(
            "The anthropic provider accepts only function tools: {'type': 'function', "
            "'function': {'name': ..., 'parameters': {...}}}.", param=f"tools[{i}]")
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice == "none":
        return {"type": "none"}
    out: dict[str, Any]
    if choice is None or choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif (isinstance(choice, dict) and isinstance(choice.get("function"), dict)
          and isinstance(choice["function"].get("name"), str)):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest("'tool_choice' must be 'auto', 'required', 'none' or "
                             "{'type': 'function', 'function': {'name': ...}}.",
                             param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None
    return out


# --- answers: Messages -> OpenAI chat --------------------------------------------------------

def _str(value: Any, where: str, what: str) -> str:
    """``value`` when it is a string; UpstreamBadResponse naming ``what`` otherwise."""
    if type(value) is not str:
        raise bad(where, f"{what} is not a string")
    return value


def _opt_str(value: Any, where: str, what: str) -> str | None:
    return None if value is None else _str(value, where, what)


def from_messages_response(data: dict[str, Any], where: str = "upstream") -> dict[str, Any]:
    """The ``chat.completion`` of a Messages answer (thinking blocks are left out); raises
    UpstreamBadResponse for a field of the wrong type."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(data.get("content") or ()):
        if type(block) is not dict:
            raise bad(where, f"content[{i}] is not an object")
        kind = block.get("type")
        if kind == "text":
            texts.append(_str(block.get("text"), where, f"content[{i}].text"))
        elif kind == "tool_use":
            args = block.get("input")
            if args is not None and type(args) is not dict:
                raise bad(where, f"content[{i}].input is not an object")
            calls.append({"id": _str(block.get("id"), where, f"content[{i}].id"),
                          "type": "function", "function": {
                "name": _str(block.get("name"), where, f"content[{i}].name"),
                "arguments": orjson.dumps(args or {}).decode()}})
    message: dict[str, Any] = {"role": "assistant",
                               "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    stop = _opt_str(data.get("stop_reason"), where, "stop_reason")
    return {
        "id": _opt_str(data.get("id"), where, "id"), "object": "chat.completion",
        "created": int(time.time()), "model": _opt_str(data.get("model"), where, "model"),
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason(stop), "logprobs": None}],
        "usage": usage_wire(data.get("usage")),
    }


def stream_error(where: str, event: dict[str, Any]) -> UpstreamError:
    """The WardenError for an ``error`` event of a Messages stream."""
    err = event.get("error")
    kind = err.get("type") if isinstance(err, dict) else None
    msg = err.get("message") if isinstance(err, dict) else None
    said = msg if isinstance(msg, str) and msg else kind if isinstance(kind, str) else None
    text = f"{where}: upstream error mid-stream: {(said or 'unknown error')[:500]}"
    if kind == "overloaded_error":
        return UpstreamOverloaded(text, body=event)
    return UpstreamError(text, code="upstream_stream_error")


class StreamTranslator:
    """Turns the events of one Messages stream, in order, into chat.completion.chunk objects.

    ``feed`` returns the chunks an event makes (often none); it raises UpstreamError for an
    ``error`` event, and UpstreamBadResponse for an event whose fields have the wrong types.
    ``done`` turns true at ``message_stop``, after which the last chunk fed out carried the
    usage (``choices: []``).
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.done = False
        self._id = ""
        self._model = ""
        self._created = int(time.time())
        self._usage: Any = {}
        self._tools: dict[int, int] = {}  # content block index -> OpenAI tool call index

    def feed(self, event: Any) -> list[dict[str, Any]]:
        if type(event) is not dict:
            raise bad(self.where, "a stream event is not an object")
        kind = event.get("type")
        if kind == "content_block_delta":  # the most frequent event first
            return self._delta(event)
        if kind == "message_start":
            msg = self._object(event, "message")
            self._id = _opt_str(msg.get("id"), self.where, "message_start.message.id") or ""
            self._model = _opt_str(msg.get("model"), self.where,
                                   "message_start.message.model") or ""
            self._add_usage(msg.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_delta":
            self._add_usage(event.get("usage"))
            delta = self._object(event, "delta")
            stop = _opt_str(delta.get("stop_reason"), self.where, "message_delta.stop_reason")
            return [self._chunk({}, finish_reason(stop))]
        if kind == "message_stop":
            self.done = True
            return [{**self._base(), "choices": [], "usage": usage_wire(self._usage)}]
        if kind == "error":
            raise stream_error(self.where, event)
        if type(kind) is not str:
            raise bad(self.where, "a stream event has no string 'type'")
        return []  # ping, content_block_stop, and event types added after this was written

    def _object(self, event: dict[str, Any], key: str) -> dict[str, Any]:
        value = event.get(key)
        if type(value) is not dict:
            raise bad(self.where, f"{event['type']}.{key} is not an object")
        return value

    def _index(self, event: dict[str, Any]) -> int:
        index = event.get("index")
        if type(index) is not int or index < 0:
            raise bad(self.where, f"{event['type']}.index is not a non-negative integer")
        return index

    def _block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        index = self._index(event)
        block = self._object(event, "content_block")
        kind = block.get("type")
        if kind == "tool_use":
            where = "content_block_start.content_block"
            call_id = _str(block.get("id"), self.where, f"{where}.id")
            name = _str(block.get("name"), self.where, f"{where}.name")
            n = self._tools[index] = len(self._tools)
            return [self._chunk({"tool_calls": [{
                "index": n, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": ""}}]})]
        if kind == "text":
            text = _opt_str(block.get("text"), self.where,
                            "content_block_start.content_block.text")
            if text:
                return [self._chunk({"content": text})]
        return []

    def _delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        index = self._index(event)
        delta = self._object(event, "delta")
        kind = delta.get("type")
        if kind == "text_delta":
            text = _str(delta.get("text"), self.where, "content_block_delta.delta.text")
            return [self._chunk({"content": text})]
        if kind == "input_json_delta":
            n = self._tools.get(index)
            if n is None:
                raise bad(self.where, "tool arguments for a content block that is not a tool call")
            fragment = _opt_str(delta.get("partial_json"), self.where,
                                "content_block_delta.delta.partial_json")
            if fragment:
                return [self._chunk({"tool_calls": [
                    {"index": n, "function": {"arguments": fragment}}]})]
        return []  # thinking and signature deltas have no OpenAI counterpart

    def _add_usage(self, usage: Any) -> None:
        if usage is None:
            return
        if type(usage) is dict and type(self._usage) is dict:
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        else:
            self._usage = usage  # not an object: passed on for the usage check to reject

    def _base(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**self._base(), "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
