"""Plugin loading: built-in modules and third-party packages (entry-point group ``warden``)."""

from __future__ import annotations

import importlib

import pluggy

from warden import hookspecs
from warden.config import did_you_mean
from warden.errors import ConfigError
from warden.guard.base import Scanner
from warden.providers.base import Provider

DEFAULT_PLUGINS = (
    "warden.providers.openai",
    "warden.providers.anthropic",
    "warden.providers.fake",
    "warden.providers.local",
    "warden.providers.local_embedding",
    *(f"warden.guard.scanners.{name}" for name in (
        "banned", "canary", "hidden_text", "injection", "json_schema", "pii", "refusal", "secrets",
        "token_limit", "toxicity",
    )),
)


def make_plugin_manager(*, entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins and, optionally, installed ones."""
    pm = pluggy.PluginManager("warden")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if entry_points:
        pm.load_setuptools_entrypoints("warden")
    return pm


class ProviderRegistry:
    """Provider classes by name, collected from the ``register_providers`` hook."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._by_name: dict[str, type[Provider]] = {}

        def register(cls: type[Provider]) -> None:
            if cls.name in self._by_name and self._by_name[cls.name] is not cls:
                raise ConfigError(f"two plugins register a provider named '{cls.name}'")
            self._by_name[cls.name] = cls

        pm.hook.register_providers(register=register)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str, where: str) -> type[Provider]:
        cls = self._by_name.get(name)
        if cls is None:
            raise ConfigError(
                f"{where}: unknown provider '{name}'{did_you_mean(name, self.names())} "
                f"(installed providers: {', '.join(self.names())})"
            )
        return cls


class ScannerRegistry:
    """Guard scanner classes by name, collected from the ``register_scanners`` hook."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._by_name: dict[str, type[Scanner]] = {}

        def register(cls: type[Scanner]) -> None:
            if cls.name in self._by_name and self._by_name[cls.name] is not cls:
                raise ConfigError(f"two plugins register a scanner named '{cls.name}'")
            self._by_name[cls.name] = cls

        pm.hook.register_scanners(register=register)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str, where: str) -> type[Scanner]:
        cls = self._by_name.get(name)
        if cls is None:
            raise ConfigError(
                f"{where}: unknown scanner '{name}'{did_you_mean(name, self.names())} "
                f"(installed scanners: {', '.join(self.names())})"
            )
        return cls
