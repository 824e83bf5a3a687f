"""``warden keys create|list|revoke``: API keys in the configured store, opened directly.

Running gateways see a new or revoked key within a few seconds (they poll the store)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, cast, get_args

import click

from warden.access.roles import ROLES, Role
from warden.config import Config, load_config
from warden.errors import ConfigError, InvalidRequest, WardenError
from warden.observe.keeper import store_url
from warden.observe.record import PayloadPolicy
from warden.store import open_store
from warden.store.keys import MAX_NAME_CHARS, KeyStore, StoredKey, check_name

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    default=lambda: os.environ.get("WARDEN_CONFIG"),
    help="warden.yaml whose store keeps the keys (default: $WARDEN_CONFIG; none = the default "
         "store, data/warden.db).")


@contextmanager
def _key_store(config_path: str | None) -> Iterator[KeyStore]:
    """The key store of the configured store; exits 1 with the reason when it cannot open."""
    try:
        config = load_config(config_path) if config_path else Config()
        store = open_store(store_url(config))
    except (ConfigError, WardenError) as exc:
        _fail(exc)
    try:
        if store.keys is None:
            raise click.ClickException("this store keeps no API keys")
        yield store.keys
    except WardenError as exc:
        _fail(exc)
    finally:
        store.close()


def _fail(exc: Exception) -> NoReturn:
    message = exc.message if isinstance(exc, WardenError) else str(exc)
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _when(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys (kept hashed in the store)."""


def _checked(param: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def check(ctx: click.Context, option: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_name(value, param)
        except InvalidRequest as exc:
            raise click.BadParameter(exc.message) from None
    return check


@keys_group.command("create")
@click.option("--name", required=True, callback=_checked("name"),
              help=f"Who or what uses the key: letters, digits, spaces and . _ - @ : +, at most "
                   f"{MAX_NAME_CHARS} characters.")
@click.option("--role", type=click.Choice(ROLES), default="app", show_default=True,
              help="admin: everything; operator: read, reload, feedback; viewer: read only; "
                   "app: only /v1.")
@click.option("--team", default=None, callback=_checked("team"),
              help="Team of the key's requests (the same characters as a name); a key that is "
                   "not an admin reads only its team's records.")
@click.option("--models", default=None, help="Comma-separated public models the key may use "
              "(default: all).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="A tag added to each record of the key's requests (repeatable).")
@click.option("--payloads", type=click.Choice(get_args(PayloadPolicy)), default=None,
              help="Overrides store.payloads for the key's requests.")
@_config_option
def create(name: str, role: str, team: str | None, models: str | None, tags: tuple[str, ...],
           payloads: str | None, config_path: str | None) -> None:
    """Create a key and print its token, once: it is stored only as a hash."""
    tag_map: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{tag!r} is not KEY=VALUE", param_hint="--tag")
        tag_map[key] = value
    allowed = None if models is None else [m.strip() for m in models.split(",") if m.strip()]
    with _key_store(config_path) as keys:
        made, token = keys.create(name, cast(Role, role), team=team, models=allowed,
                                  tags=tag_map, payloads=cast("PayloadPolicy | None", payloads))
    click.echo(f"id:    {made.id}")
    click.echo(f"token: {token}")
    click.echo("Store the token now: it is not shown again. Revoke it with "
               f"'warden keys revoke {made.id}'.", err=True)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one list of keys).")
@_config_option
def list_command(as_json: bool, config_path: str | None) -> None:
    """List the keys (never their tokens), revoked ones included."""
    with _key_store(config_path) as keys:
        found = keys.all()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(k) for k in found], indent=2))
        return
    rows: list[tuple[str, ...]] = [
        ("ID", "NAME", "ROLE", "TEAM", "MODELS", "CREATED", "LAST USED", "REVOKED"),
        *(_row(k) for k in found),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _row(k: StoredKey) -> tuple[str, ...]:
    return (k.id, k.name, k.role, k.team or "-", ",".join(k.models) if k.models else "all",
            _when(k.created_at), _when(k.last_used_at), _when(k.revoked_at))


@keys_group.command("revoke")
@click.argument("key_id")
@_config_option
def revoke(key_id: str, config_path: str | None) -> None:
    """Revoke the key KEY_ID; gateways refuse it within a few seconds."""
    with _key_store(config_path) as keys:
        key = keys.revoke(key_id)
    click.echo(f"revoked {key.id} ({key.name}) at {_when(key.revoked_at)} UTC")
