"""The keyring: the store's API keys in memory, so that a request costs no database round trip.

Every ``refresh_s`` seconds it asks the store whether any key was created or revoked (one small
aggregate query) and, if so, loads them all again. The process that creates or revokes a key
reloads at once, so a revoked key stops working there immediately and on every other replica
within one interval. While the database cannot be reached, the last keys loaded stay in force
(and each failed refresh is logged and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence

from warden.access.roles import Principal, Role
from warden.errors import AuthenticationFailed, WardenError
from warden.observe.record import PayloadPolicy
from warden.store.keys import KeyStore, StoredKey

log = logging.getLogger("warden.keys")

REFRESH_S = 2.0
TOUCH_S = 60.0  # how often the last use of keys is written back


class Keyring:
    """Resolves token hashes to the store's keys from memory. One per gateway process."""

    def __init__(self, store: KeyStore, refresh_s: float = REFRESH_S) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.refresh_failures = 0
        self._keys: dict[bytes, tuple[StoredKey, Principal]] = {}
        self._ids: dict[str, bytes] = {}  # key id -> token hash
        self._version: tuple[int, int] | None = None
        self._lock = threading.Lock()  # loads one at a time: a slow old read never wins
        self._used: dict[str, float] = {}
        self._touched = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    # -- the request path -------------------------------------------------------------------

    def resolve(self, hashed: bytes) -> Principal | None:
        """The holder of the token with SHA-256 ``hashed``; None for a token not in the store.
        Raises AuthenticationFailed (401) for a revoked key."""
        found = self._keys.get(hashed)
        if found is None:
            return None
        return self._use(*found)

    def lookup(self, key_id: str) -> tuple[bytes, Principal] | None:
        """The token hash and holder of the key with id ``key_id`` (a dashboard session's
        key); None for an id not in the store. Raises AuthenticationFailed (401) for a revoked
        key."""
        hashed = self._ids.get(key_id)
        found = None if hashed is None else self._keys.get(hashed)
        if hashed is None or found is None:
            return None
        return hashed, self._use(*found)

    def _use(self, key: StoredKey, principal: Principal) -> Principal:
        if key.revoked_at is not None:
            revoked = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(key.revoked_at))
            raise AuthenticationFailed(
                f"The API key '{key.name}' ({key.id}) was revoked at {revoked}; "
                "ask an admin for a new key.", code="api_key_revoked")
        self._used[key.id] = time.time()
        return principal

    @property
    def has_keys(self) -> bool:
        """Whether the store holds any key, revoked ones included: once keys are managed in
        the store, /v1 stays closed even after the last one is revoked."""
        return bool(self._keys)

    # -- loading ----------------------------------------------------------------------------

    def load(self, force: bool = True) -> bool:
        """Read the keys from the store (unless ``force`` is False and nothing changed);
        returns whether they were read. Blocking; raises StoreError."""
        with self._lock:
            if not force and self._version is not None and self.store.version() == self._version:
                return False
            version, found = self.store.snapshot()
            keys = {hashed: (key, key.principal()) for hashed, key in found}
            self._keys = keys
            self._ids = {key.id: hashed for hashed, (key, _) in keys.items()}
            self._version = version
            return True

    def refresh(self) -> None:
        """One round of the background refresh: reload if anything changed, and write back
        when keys were last used (about once a minute). Blocking; never raises a StoreError."""
        try:
            if self.load(force=False):
                log.debug("API keys reloaded: %d key(s)", len(self._keys))
            if self._used and time.monotonic() - self._touched >= TOUCH_S:
                self.flush_used()
        except WardenError as exc:
            self.refresh_failures += 1
            log.warning("could not refresh the API keys (the last ones loaded stay in force): %s",
                        exc.message)

    def flush_used(self) -> None:
        # A use noted on the event loop during this swap may be lost: the next use notes it again.
        used, self._used = self._used, {}
        self._touched = time.monotonic()
        self.store.touch(used)

    async def start(self) -> None:
        """Refresh in the background until ``close``."""
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await asyncio.to_thread(self.refresh)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.to_thread(self.flush_used)
        except WardenError as exc:
            log.warning("could not note when API keys were last used: %s", exc.message)

    # -- changes, effective at once in this process -----------------------------------------

    def create(self, name: str, role: Role = "app", *, team: str | None = None,
               models: Sequence[str] | None = None, tags: Mapping[str, str] | None = None,
               payloads: PayloadPolicy | None = None) -> tuple[StoredKey, str]:
        """Store a new key and load it; returns it and its token. Blocking."""
        made = self.store.create(name, role, team=team, models=models, tags=tags,
                                 payloads=payloads)
        self.load()
        return made

    def revoke(self, key_id: str) -> StoredKey:
        """Revoke a key in the store and here at once; raises NotFound. Blocking."""
        key = self.store.revoke(key_id)
        self.load()
        return key
