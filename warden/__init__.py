"""Warden: serve, watch and guard LLMs behind one OpenAI-compatible endpoint.

What plugin authors may import is listed in ``__all__``.
"""

from warden.config import Config, Deployment, load_config, parse_config
from warden.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
    WardenError,
)
from warden.hookspecs import hookimpl
from warden.lifecycle.integrity import IntegrityOutcome, ModelIntegrityError, SignedModelParams
from warden.providers.base import (
    Completion,
    Provider,
    ProviderCall,
    ProviderParams,
    Timeouts,
    Usage,
)

__all__ = [
    "AuthenticationFailed",
    "Completion",
    "Config",
    "ConfigError",
    "Deployment",
    "IntegrityOutcome",
    "InvalidRequest",
    "ModelIntegrityError",
    "NotFound",
    "PermissionDenied",
    "Provider",
    "ProviderCall",
    "ProviderParams",
    "RateLimited",
    "SignedModelParams",
    "Timeouts",
    "Unavailable",
    "UpstreamError",
    "UpstreamStatus",
    "UpstreamTimeout",
    "Usage",
    "WardenError",
    "hookimpl",
    "load_config",
    "parse_config",
]
