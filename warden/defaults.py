"""What the gateway serves when started with no config file."""

from __future__ import annotations

from warden.config import Config, parse_config


def default_config() -> Config:
    """A loopback-only gateway with a built-in echo model, so a fresh install answers at once."""
    return parse_config({
        "models": [
            {"name": "echo", "routing": {"strategy": "round-robin"},
             "deployments": [{"id": "echo-1", "provider": "fake",
                              "params": {"tokens_per_s": 0}}]},
        ]
    }, env={})
