"""The key API under /api/keys (admin role only): create, list and revoke the store's API keys.

A new key's token is in the answer to its creation and nowhere else, ever; lists show ids,
names, roles and times, never a token or its hash. A revocation takes effect at once in this
gateway and within a few seconds in every other one sharing the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.access.keyring import Keyring
from warden.access.roles import Role
from warden.api.admin import authorize
from warden.api.responses import JSON, error_response
from warden.errors import InvalidRequest, WardenError
from warden.observe.record import PayloadPolicy
from warden.runtime import RuntimeHolder

T = TypeVar("T")


class NewKey(BaseModel):
    """The body of ``POST /api/keys``."""

    model_config = ConfigDict(extra="forbid")

    # Checked, with the characters allowed, by the store's ``check_name``: one rule for every
    # way a key is made.
    name: str = Field(description="Who or what uses the key.")
    role: Role = Field("app", description="admin, operator, viewer or app (only /v1).")
    team: str | None = Field(None, min_length=1, description="The team of the key's requests.")
    models: list[str] | None = Field(None, description="Allowed public models; unset: all.")
    tags: dict[str, str] = Field(default_factory=dict, description="Added to each record.")
    payloads: PayloadPolicy | None = Field(None, description="Overrides store.payloads.")


class KeysApi:
    def __init__(self, holder: RuntimeHolder, keyring: Keyring | None) -> None:
        self._holder = holder
        self._keyring = keyring

    def routes(self) -> list[Route]:
        return [
            Route("/api/keys", self.create_key, methods=["POST"]),
            Route("/api/keys", self.list_keys, methods=["GET"]),
            Route("/api/keys/{key_id}", self.revoke_key, methods=["DELETE"]),
        ]

    async def _run(self, fn: Callable[[Keyring], T]) -> T:
        keyring = self._keyring
        if keyring is None:
            raise WardenError("This gateway's store keeps no API keys; list keys in warden.yaml.",
                              status=501, code="key_store_unavailable")
        return await asyncio.get_running_loop().run_in_executor(None, fn, keyring)

    async def create_key(self, request: Request) -> Response:
        try:
            authorize(self._holder, request, "administer")
            spec = _parse(await request.body())
            key, token = await self._run(lambda ring: ring.create(
                spec.name, spec.role, team=spec.team, models=spec.models, tags=spec.tags,
                payloads=spec.payloads))
        except WardenError as exc:
            return error_response(exc)
        return JSON({**dataclasses.asdict(key), "token": token}, status_code=201)

    async def list_keys(self, request: Request) -> Response:
        try:
            authorize(self._holder, request, "administer")
            found = await self._run(lambda ring: ring.store.all())
        except WardenError as exc:
            return error_response(exc)
        return JSON({"data": [dataclasses.asdict(k) for k in found]})

    async def revoke_key(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]
        try:
            authorize(self._holder, request, "administer")
            key = await self._run(lambda ring: ring.revoke(key_id))
        except WardenError as exc:
            return error_response(exc)
        return JSON(dataclasses.asdict(key))


def _parse(raw: bytes) -> NewKey:
    try:
        return NewKey.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body must be JSON: {name, role, team, models, tags, payloads}.",
                             code="invalid_json") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InvalidRequest(f"{where}: {first['msg']}" if where else first["msg"],
                             param=where or None) from None
