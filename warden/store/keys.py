"""KeyStore: API keys kept in the store's database, in the ``api_keys`` table.

A key is stored by the SHA-256 of its token, never the token itself: ``create`` returns the
token once and nothing can show it again. A key is named everywhere by its public id
(``key_`` and 16 hex digits); its token is ``wk-<the same 16 hex digits>-<48 hex digits>``.
Keys are revoked, never deleted, so that records and audits can still name them.

The gateway does not read this table per request: ``warden.access.keyring`` keeps the keys in
memory and asks ``version()`` on a short interval whether anything changed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, cast, get_args

import sqlalchemy as sa

from warden.access.roles import ROLES, Principal, Role
from warden.errors import InvalidRequest, NotFound
from warden.observe.record import PayloadPolicy
from warden.store.tables import api_keys

Transaction = Callable[[str], AbstractContextManager[sa.Connection]]
"""Opens a connection for an action named in error messages (``SqlStore._read`` / ``_write``)."""

MAX_TAGS = 32
MAX_NAME_CHARS = 100
# Letters, digits and . _ - @ : + and inner spaces: a name is shown in tables, logs and the
# dashboard and travels in records and budget labels, so no line breaks, control characters
# or path separators.
_NAME = re.compile(r"\w(?:[\w .@:+-]*[\w.@:+-])?")
_PAYLOADS: tuple[str, ...] = get_args(PayloadPolicy)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what the store keeps instead of it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key id, token) pair."""
    public = secrets.token_hex(8)
    return f"key_{public}", f"wk-{public}-{secrets.token_hex(24)}"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One API key as stored (without its hash). ``last_used_at`` is approximate: gateways
    write it about once a minute."""

    id: str
    name: str
    role: Role
    team: str | None = None
    models: tuple[str, ...] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    payloads: PayloadPolicy | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    last_used_at: float | None = None

    def principal(self) -> Principal:
        return Principal(id=self.id, name=self.name, role=self.role, team=self.team,
                         models=self.models, tags=self.tags, payloads=self.payloads)


def check_name(value: str, param: str = "name") -> str:
    """``value`` without surrounding spaces when it is a valid key or team name; else
    InvalidRequest naming ``param``. The one rule for the CLI, the key API and the store."""
    what = "A key's name" if param == "name" else param
    stripped = value.strip() if isinstance(value, str) else ""
    if not stripped:
        raise InvalidRequest(f"{what} must not be empty (who or what uses the key).",
                             param=param)
    if len(stripped) > MAX_NAME_CHARS:
        raise InvalidRequest(f"{what} is longer than {MAX_NAME_CHARS} characters.", param=param)
    if not _NAME.fullmatch(stripped):
        raise InvalidRequest(
            f"{what} may hold only letters, digits, spaces and . _ - @ : + (starting with a "
            "letter or digit); no line breaks, slashes or other symbols.", param=param)
    return stripped


def _validate(name: str, role: str, team: str | None, models: Sequence[str] | None,
              tags: Mapping[str, str], payloads: str | None) -> None:
    check_name(name)
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}; got {role!r}", param="role")
    if team is not None and not team.strip():
        raise InvalidRequest("team must not be empty; leave it out for no team.", param="team")
    if team is not None:
        check_name(team, "team")
    if models is not None and not all(isinstance(m, str) and m for m in models):
        raise InvalidRequest("models must be a list of public model names.", param="models")
    if len(tags) > MAX_TAGS or not all(isinstance(k, str) and k and isinstance(v, str)
                                       for k, v in tags.items()):
        raise InvalidRequest(f"tags must map up to {MAX_TAGS} names to strings.", param="tags")
    if payloads is not None and payloads not in _PAYLOADS:
        raise InvalidRequest(f"payloads must be one of {', '.join(_PAYLOADS)}; got {payloads!r}",
                             param="payloads")


def _to_key(row: sa.Row[Any]) -> StoredKey:
    return StoredKey(
        id=row.id, name=row.name, role=cast(Role, row.role), team=row.team,
        models=None if row.models is None else tuple(row.models),
        tags=dict(row.tags or {}), payloads=cast("PayloadPolicy | None", row.payloads),
        created_at=row.created_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at,
    )


class KeyStore:
    """Creates, lists and revokes API keys. Thread-safe; every method is one transaction."""

    def __init__(self, read: Transaction, write: Transaction) -> None:
        self._read = read
        self._write = write

    def create(self, name: str, role: Role = "app", *, team: str | None = None,
               models: Sequence[str] | None = None, tags: Mapping[str, str] | None = None,
               payloads: PayloadPolicy | None = None, at: float | None = None
               ) -> tuple[StoredKey, str]:
        """Store a new key; returns it and its token (the only time the token is seen).

        Raises InvalidRequest for an unknown role or payload policy, a name or team that is
        empty, too long or holds characters outside ``check_name``'s set."""
        tags = dict(tags or {})
        _validate(name, role, team, models, tags, payloads)
        key_id, token = new_key()
        key = StoredKey(id=key_id, name=name.strip(), role=role, team=team,
                        models=None if models is None else tuple(models), tags=tags,
                        payloads=payloads, created_at=time.time() if at is None else at)
        with self._write("create an API key") as conn:
            conn.execute(sa.insert(api_keys).values(
                id=key.id, token_sha256=hash_token(token), name=key.name, role=key.role,
                team=key.team, models=sa.null() if key.models is None else list(key.models),
                tags=tags, payloads=key.payloads, created_at=key.created_at))
        return key, token

    def get(self, key_id: str) -> StoredKey | None:
        with self._read("read an API key") as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        return None if row is None else _to_key(row)

    def all(self) -> list[StoredKey]:
        """Every key, revoked ones included, oldest first."""
        with self._read("list API keys") as conn:
            found = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id))
            return [_to_key(row) for row in found]

    def revoke(self, key_id: str, at: float | None = None) -> StoredKey:
        """Revoke a key (a key already revoked keeps its first revocation time); returns it.
        Raises NotFound for an unknown id."""
        when = time.time() if at is None else at
        if "\x00" in key_id or len(key_id) > 200:
            # Never an id this store made (PostgreSQL could not even compare it).
            raise NotFound(f"No API key has id {key_id[:200]!r}; GET /api/keys or 'warden keys "
                           "list' lists them.", code="key_not_found")
        with self._write("revoke an API key") as conn:
            conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id,
                                                   api_keys.c.revoked_at.is_(None))
                         .values(revoked_at=when))
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFound(f"No API key has id '{key_id}'; GET /api/keys or 'warden keys list' "
                               "lists them (keys listed in warden.yaml are removed there).",
                               code="key_not_found")
        return _to_key(row)

    def version(self) -> tuple[int, int]:
        """(keys, revoked keys): changes whenever a key is created or revoked, the only changes
        a key ever sees, so a reader polls this instead of reading every key."""
        with self._read("check the API keys") as conn:
            row = conn.execute(sa.select(sa.func.count(), sa.func.count(api_keys.c.revoked_at))
                               .select_from(api_keys)).one()
        return int(row[0]), int(row[1])

    def snapshot(self) -> tuple[tuple[int, int], list[tuple[bytes, StoredKey]]]:
        """Every key with the SHA-256 of its token, and the version they make up."""
        with self._read("load the API keys") as conn:
            found = [(bytes.fromhex(row.token_sha256), _to_key(row))
                     for row in conn.execute(sa.select(api_keys))]
        revoked = sum(1 for _, key in found if key.revoked_at is not None)
        return (len(found), revoked), found

    def touch(self, used: Mapping[str, float]) -> None:
        """Record when keys were last used (``{key id: unix seconds}``); never moves back."""
        if not used:
            return
        c = api_keys.c
        stmt = (sa.update(api_keys)
                .where(c.id == sa.bindparam("key_id"),
                       sa.or_(c.last_used_at.is_(None), c.last_used_at < sa.bindparam("at")))
                .values(last_used_at=sa.bindparam("at")))
        with self._write("note when API keys were used") as conn:
            conn.execute(stmt, [{"key_id": k, "at": t} for k, t in used.items()])
