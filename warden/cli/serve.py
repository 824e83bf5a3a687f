"""``warden serve``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from warden.config import load_config
from warden.defaults import default_config
from warden.errors import ConfigError, WardenError
from warden.server import serve


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              default=lambda: os.environ.get("WARDEN_CONFIG"),
              help="warden.yaml to serve (default: $WARDEN_CONFIG; none = built-in defaults).")
@click.option("--host", default=None, help="Bind address (default: server.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Bind port (default: server.port, 4000).")
@click.option("--allow-public-without-keys", is_flag=True,
              help="Allow a non-loopback bind while no client keys are configured.")
@click.option("--log-level", default="info",
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve_command(config_path: str | None, host: str | None, port: int | None,
                  allow_public_without_keys: bool, log_level: str) -> None:
    """Run the gateway. SIGHUP reloads the config; SIGTERM drains and stops."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if config_path:
            config = load_config(config_path)
            path: Path | None = Path(config_path)
        else:
            defaults = default_config()
            config, path = defaults.config, None
            click.echo("warden: no --config given: serving the built-in defaults.")
            for note in defaults.notes:
                click.echo(f"warden: {note}")
        serve(config, config_path=path, host=host, port=port,
              allow_public=allow_public_without_keys, log_level=log_level)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except WardenError as exc:  # e.g. the store cannot be opened
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(2) from None
