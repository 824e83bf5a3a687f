"""Extension points. Built-in parts register through these hooks exactly as plugins do."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from warden.guard.base import Scanner
    from warden.providers.base import Provider

hookspec = pluggy.HookspecMarker("warden")
hookimpl = pluggy.HookimplMarker("warden")


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register Provider classes by calling ``register(cls)`` once for each."""


@hookspec
def register_scanners(register: Callable[[type[Scanner]], None]) -> None:
    """Register guard Scanner classes by calling ``register(cls)`` once for each."""
