"""Which configuration values may be shown (``GET /api/config``, the dashboard), marked on the
typed config itself.

Every setting of ``warden.yaml`` carries one mark in its type, ``Public[...]``, ``Secret[...]``,
``Url[...]`` or ``ByProvider[...]``, unless its value is itself a config model (whose own
fields are marked). ``shown`` renders a config model by those marks, never from a dumped dict: a
value without a mark is masked, so a setting added without thought stays hidden, and a test walks
the whole schema so that every new setting gets a mark. The marks also appear in the JSON Schema
(``warden config schema``) as ``"x-shown"``.

    Public            shown as it is
    Secret            "***" when set; a mapping keeps its keys (header names) and masks each value
    Url               the URL without its userinfo (user:password@), query values masked
    ByProvider        a deployment's params: a key its provider's Params model marks Public is
                      shown, every other value masked
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

MASK = "***"


class Shown(enum.Enum):
    """How a setting's value may be shown (see the module docstring)."""

    PUBLIC = "public"
    SECRET = "secret"
    URL = "url"
    BY_PROVIDER = "by-provider"

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-shown"] = self.value
        return schema


T = TypeVar("T")
Public = Annotated[T, Shown.PUBLIC]
Secret = Annotated[T, Shown.SECRET]
Url = Annotated[T, Shown.URL]
ByProvider = Annotated[T, Shown.BY_PROVIDER]

#: The Params model of a provider plugin by its name, or None when it is unknown.
ParamsLookup = Callable[[str], type[BaseModel] | None]


def mark_of(field: FieldInfo) -> Shown | None:
    """The visibility mark of a model field, or None when it has none."""
    return next((m for m in field.metadata if isinstance(m, Shown)), None)


def bare_url(url: str) -> str:
    """``url`` without what may be a credential: userinfo, query values and the fragment."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- a malformed port raises here, and the URL is then masked whole
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    # Put together by hand: urlunsplit drops the empty authority of sqlite:///path.
    head = f"{parts.scheme}:" if parts.scheme else ""
    if url[len(head):].startswith("//"):
        head += f"//{netloc}"
    return head + parts.path + (f"?{query}" if query else "")


def shown(model: BaseModel, params_of: ParamsLookup = lambda _: None) -> dict[str, Any]:
    """The fields of ``model`` as JSON-ready values, each shown as its mark allows."""
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        mark = mark_of(field)
        if mark is Shown.BY_PROVIDER:
            out[name] = _params(value, params_of(str(getattr(model, "provider", ""))), params_of)
        else:
            out[name] = _value(value, mark, params_of)
    return out


def _value(value: Any, mark: Shown | None, params_of: ParamsLookup) -> Any:
    if isinstance(value, BaseModel):
        return shown(value, params_of)
    if value is None:
        return None
    if isinstance(value, Mapping):
        if mark is Shown.SECRET:
            return {str(k): (MASK if v not in (None, "") else v) for k, v in value.items()}
        return {str(k): _value(v, mark, params_of) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_value(v, mark, params_of) for v in value]
    if mark is Shown.PUBLIC:
        if isinstance(value, enum.Enum):
            return value.value
        return value if isinstance(value, str | int | float | bool) else str(value)
    if mark is Shown.URL and isinstance(value, str):
        return bare_url(value)
    if value == "" and mark is Shown.SECRET:
        return value  # nothing is set, and saying so tells nothing
    return MASK


def _params(params: Mapping[str, Any], model: type[BaseModel] | None,
            params_of: ParamsLookup) -> dict[str, Any]:
    fields = model.model_fields if model is not None else {}
    out: dict[str, Any] = {}
    for key, value in params.items():
        field = fields.get(key)
        mark = mark_of(field) if field is not None else None
        out[str(key)] = _value(value, mark, params_of) if mark is not None else (
            None if value is None else MASK)
    return out
