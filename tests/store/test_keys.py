"""API keys in the store, kept by the hash of their token, and the keyring that serves them from
memory: on SQLite and, when WARDEN_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa

from warden.access.keyring import Keyring
from warden.errors import AuthenticationFailed, InvalidRequest, NotFound
from warden.store import SqlStore, StoreError, open_store
from warden.store.tables import api_keys


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_a_new_key_is_stored_by_the_hash_of_its_token_only(store: SqlStore) -> None:
    key, token = store.keys.create("search", "app", team="search", models=["a", "b"],
                                   tags={"cost_center": "cc-1"}, payloads="redacted")
    assert re.fullmatch(r"key_[0-9a-f]{16}", key.id)
    assert re.fullmatch(rf"wk-{key.id[4:]}-[0-9a-f]{{48}}", token)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys)).one()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(tuple(row))
    assert store.keys.get(key.id) == key
    assert (key.name, key.role, key.team, key.models, dict(key.tags), key.payloads) == (
        "search", "app", "search", ("a", "b"), {"cost_center": "cc-1"}, "redacted")


def test_keys_are_listed_oldest_first_with_all_models_as_none(store: SqlStore) -> None:
    second, _ = store.keys.create("second", "viewer", at=2.0)
    first, _ = store.keys.create("first", "admin", at=1.0)
    assert [k.id for k in store.keys.all()] == [first.id, second.id]
    assert first.models is None and first.team is None and first.payloads is None


def test_revoking_keeps_the_first_time_and_an_unknown_id_is_404(store: SqlStore) -> None:
    key, _ = store.keys.create("bot")
    assert store.keys.revoke(key.id, at=10.0).revoked_at == 10.0
    assert store.keys.revoke(key.id, at=20.0).revoked_at == 10.0
    with pytest.raises(NotFound, match="warden keys list"):
        store.keys.revoke("key_0000000000000000")


def test_names_in_the_usual_forms_are_kept(store: SqlStore) -> None:
    names = ["search", "CI bot", "alice@example.com", "svc:billing+v2", "team_a.prod-1", "Zoë",
             "x" * 100]
    for name in names:
        store.keys.create(f" {name} ", team=name)
    assert sorted(k.name for k in store.keys.all()) == sorted(names)


@pytest.mark.parametrize(("changes", "param"), [
    ({"name": " "}, "name"), ({"role": "root"}, "role"), ({"payloads": "some"}, "payloads"),
    ({"team": ""}, "team"), ({"models": ["a", ""]}, "models"),
    ({"name": "two\nlines"}, "name"), ({"name": "../up"}, "name"), ({"name": "x" * 101}, "name"),
    ({"name": "tab\there"}, "name"), ({"team": "a/b"}, "team"),
])
def test_invalid_keys_are_refused_with_the_field(store: SqlStore, changes: dict[str, object],
                                                 param: str) -> None:
    values: dict[str, object] = {"name": "bot", "role": "app", **changes}
    with pytest.raises(InvalidRequest) as caught:
        store.keys.create(**values)  # type: ignore[arg-type]
    assert caught.value.param == param
    assert store.keys.all() == []


def test_the_version_moves_on_each_create_and_revoke(store: SqlStore) -> None:
    assert store.keys.version() == (0, 0)
    key, _ = store.keys.create("bot")
    assert store.keys.version() == (1, 0)
    store.keys.revoke(key.id)
    assert store.keys.version() == (1, 1)
    version, found = store.keys.snapshot()
    assert version == (1, 1) and [k.id for _, k in found] == [key.id]


def test_the_last_use_never_moves_back(store: SqlStore) -> None:
    key, _ = store.keys.create("bot")
    store.keys.touch({key.id: 100.0, "key_unknown": 5.0})
    store.keys.touch({key.id: 50.0})
    assert (found := store.keys.get(key.id)) is not None and found.last_used_at == 100.0


def test_the_keyring_resolves_from_memory_and_a_revocation_at_once(store: SqlStore) -> None:
    ring = Keyring(store.keys)
    ring.load()
    assert not ring.has_keys
    key, token = ring.create("bot", "operator", team="t", models=["a"])
    who = ring.resolve(digest(token))
    assert who is not None and (who.id, who.role, who.team, who.models) == (
        key.id, "operator", "t", ("a",))
    assert ring.resolve(digest("wk-not-a-key")) is None
    ring.revoke(key.id)
    with pytest.raises(AuthenticationFailed, match=r"revoked.*ask an admin") as caught:
        ring.resolve(digest(token))
    assert caught.value.status == 401 and caught.value.code == "api_key_revoked"
    assert ring.has_keys  # a revoked key still counts: /v1 does not reopen


def test_another_replica_sees_new_and_revoked_keys_on_its_next_refresh(
        store: SqlStore, store_url: str) -> None:
    other = open_store(store_url)
    try:
        assert other.keys is not None
        replica = Keyring(other.keys)
        replica.load()
        key, token = store.keys.create("bot")
        assert replica.resolve(digest(token)) is None
        replica.refresh()
        assert replica.resolve(digest(token)) is not None
        store.keys.revoke(key.id)
        replica.refresh()
        with pytest.raises(AuthenticationFailed):
            replica.resolve(digest(token))
    finally:
        other.close()


def test_the_keyring_writes_back_when_keys_were_used(store: SqlStore) -> None:
    ring = Keyring(store.keys)
    key, token = ring.create("bot")
    ring.resolve(digest(token))
    ring.flush_used()
    assert (found := store.keys.get(key.id)) is not None and found.last_used_at is not None


class _Unreachable:
    """A key store whose database is down."""

    def version(self) -> tuple[int, int]:
        raise StoreError("cannot reach PostgreSQL at postgresql://db/warden")


def test_a_failed_refresh_is_counted_and_keeps_the_keys_loaded(store: SqlStore) -> None:
    ring = Keyring(store.keys)
    _, token = ring.create("bot")
    ring.store = _Unreachable()  # type: ignore[assignment]
    ring.refresh()
    assert ring.refresh_failures == 1
    assert ring.resolve(digest(token)) is not None
