"""The ``warden`` console command."""

from __future__ import annotations

import click

from warden.cli.config import config_group
from warden.cli.guard import guard_group
from warden.cli.keys import keys_group
from warden.cli.model import model_group
from warden.cli.serve import serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="warden")
def cli() -> None:
    """Warden: serve, watch and guard LLMs behind one OpenAI-compatible endpoint."""


cli.add_command(serve_command)
cli.add_command(config_group)
cli.add_command(guard_group)
cli.add_command(keys_group)
cli.add_command(model_group)


def main() -> None:
    cli()
