"""``warden config check FILE`` and ``warden config schema``."""

from __future__ import annotations

import json

import click

from warden.config import Config, load_config
from warden.errors import ConfigError
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.runtime import build_runtime


@click.group("config")
def config_group() -> None:
    """Check and describe warden.yaml."""


@config_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Validate PATH, including each provider's params; exit 1 with the problems if invalid."""
    try:
        config = load_config(path)
        build_runtime(config, ProviderRegistry(make_plugin_manager()))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    n = sum(len(m.deployments) for m in config.models)
    click.echo(f"{path}: ok ({len(config.models)} model(s), {n} deployment(s))")


@config_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of warden.yaml."""
    click.echo(json.dumps(Config.model_json_schema(), indent=2))
