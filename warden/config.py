"""The typed configuration: one YAML file (``warden.yaml``) validated by pydantic models.

``${VAR}`` and ``${VAR:-default}`` are expanded in string values (``$${`` is a literal ``${``).
Unknown or misspelt keys are refused with the key's path and the closest valid key.
Every key is documented by its ``Field(description=...)``; ``warden config schema`` prints them.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warden.access.roles import Role
from warden.config_file import parse_yaml, read_text
from warden.errors import ConfigError
from warden.guard.settings import GuardSettings
from warden.limits.settings import Budget, Limits
from warden.visibility import ByProvider, Public, Secret, Url

Strategy = Literal["weighted", "round-robin", "least-latency", "least-in-flight"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Model):
    """Per-deployment time limits; unset values fall back to the model's routing defaults."""

    connect_s: Public[float | None] = Field(None, gt=0, description="Time to open a TCP/TLS connection.")
    first_byte_s: Public[float | None] = Field(
        None, gt=0, description="Time from sending the request to the first byte of the answer."
    )
    total_s: Public[float | None] = Field(
        None, gt=0, description="Time for a whole non-streamed answer, or a whole stream."
    )


class Price(_Model):
    """What one million tokens cost, in USD."""

    input_per_mtok: Public[float] = Field(ge=0, description="USD per million input (prompt) tokens.")
    output_per_mtok: Public[float] = Field(ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Public[float | None] = Field(
        None, ge=0, description="USD per million cached input tokens; unset = the input price."
    )


class Deployment(_Model):
    """One place a public model can be served from: a provider with its settings."""

    id: Public[str] = Field(description="Unique within the model; returned in x-warden-deployment.")
    provider: Public[str] = Field(description="Provider plugin name: openai, anthropic, fake, ...")
    model: Public[str | None] = Field(
        None, description="The upstream model name; defaults to the public name.")
    base_url: Url[str | None] = Field(None, description="Upstream base URL, e.g. http://127.0.0.1:8000/v1.")
    api_key: Secret[str | None] = Field(
        None, description="Upstream API key; use ${ENV} to keep it out of the file.")
    weight: Public[float] = Field(1.0, gt=0, description="Share of traffic under the weighted strategy.")
    headers: Secret[dict[str, str]] = Field(default_factory=dict, description="Extra headers sent upstream.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Overrides of routing timeouts.")
    max_connections: Public[int] = Field(
        256, ge=1, description="Pooled keep-alive connections kept to this upstream."
    )
    params: ByProvider[dict[str, Any]] = Field(
        default_factory=dict, description="Provider-specific settings, validated by the provider."
    )
    price: Price | None = Field(
        None, description="Token prices of this deployment; unset = the shipped price table."
    )


class Breaker(_Model):
    """Per-deployment circuit breaker: opens after consecutive failures, probes after cooldown."""

    failures: Public[int] = Field(5, ge=1, description="Consecutive failures that open the breaker.")
    cooldown_s: Public[float] = Field(10.0, gt=0, description="Time open before a half-open probe.")
    half_open_probes: Public[int] = Field(
        1, ge=1, description="Successful probes needed to close it again."
    )


class HealthCheck(_Model):
    """Optional active health checks: a small request to every deployment on an interval."""

    enabled: Public[bool] = Field(False, description="Probe deployments in the background.")
    interval_s: Public[float] = Field(15.0, gt=0, description="Seconds between probes.")
    timeout_s: Public[float] = Field(5.0, gt=0, description="Time limit of one probe.")


class Routing(_Model):
    """How a public model picks a deployment and recovers from failures."""

    strategy: Public[Strategy] = Field("least-latency", description="Deployment choice strategy.")
    retries: Public[int] = Field(2, ge=0, le=10, description="Extra attempts after a retryable failure.")
    backoff_s: Public[float] = Field(0.05, ge=0, description="Base of the jittered exponential backoff.")
    backoff_max_s: Public[float] = Field(2.0, ge=0, description="Cap of one backoff wait.")
    timeout_s: Public[float] = Field(60.0, gt=0, description="Default total time limit per attempt.")
    connect_timeout_s: Public[float] = Field(5.0, gt=0, description="Default connect time limit.")
    first_byte_timeout_s: Public[float | None] = Field(
        None, gt=0, description="Default time limit to the first byte; unset means timeout_s."
    )
    fallbacks: Public[list[str]] = Field(
        default_factory=list, description="Other public model names tried, in order, when all "
        "deployments of this one fail."
    )
    breaker: Breaker = Field(default_factory=Breaker, description="Circuit breaker settings.")
    health_check: HealthCheck = Field(default_factory=HealthCheck, description="Active probes.")


class ModelRoute(_Model):
    """A public model name and the deployments that serve it."""

    name: Public[str] = Field(description="What clients send as \"model\".")
    routing: Routing = Field(default_factory=Routing, description="Routing and resilience.")
    deployments: list[Deployment] = Field(min_length=1, description="Where it is served from.")
    guard: Public[str | None] = Field(
        None, description="The guard policy of this model's requests (a name in guard.policies)."
    )

    @model_validator(mode="after")
    def _unique_deployments(self) -> ModelRoute:
        seen: set[str] = set()
        for dep in self.deployments:
            if dep.id in seen:
                raise ValueError(f"deployment id '{dep.id}' appears twice in model '{self.name}'")
            seen.add(dep.id)
        return self


PayloadPolicy = Literal["full", "redacted", "none"]


class ClientKey(_Model):
    """A client API key listed in the config (keys can also be kept in the store:
    ``warden keys create`` or ``POST /api/keys``)."""

    key: Secret[str] = Field(min_length=8, description="The bearer token clients send.")
    name: Public[str] = Field("default", description="A label for logs and records; the key's id in "
                      "records and the API.")
    models: Public[list[str] | None] = Field(None, description="Allowed public models; unset means all.")
    role: Public[Role] = Field("app", description="What the key may do: admin, operator, viewer or app "
                       "(only /v1).")
    team: Public[str | None] = Field(None, description="The team of the key's requests; a key that is "
                             "not an admin reads only its team's records.")
    tags: Public[dict[str, str]] = Field(
        default_factory=dict, description="Tags added to the record of each request of the key."
    )
    payloads: Public[PayloadPolicy | None] = Field(
        None, description="Overrides store.payloads for the key's requests: full, redacted, none."
    )
    guard: Public[str | None] = Field(
        None, description="The guard policy of this key's requests; overrides the model's."
    )


class MetricsSettings(_Model):
    """Who may read the Prometheus metrics, and where they are served."""

    access: Public[Literal["key", "public"]] = Field(
        "key", description="key: GET /metrics needs a key whose role may read (admin, "
        "operator, viewer), as the rest of /api; public: anyone who reaches the port."
    )
    port: Public[int | None] = Field(
        None, ge=1, le=65535, description="Serve /metrics on this port of metrics.host instead, "
        "without a key (for a Prometheus beside the gateway); the main port then has no /metrics."
    )
    host: Public[str] = Field("127.0.0.1", description="Bind address of metrics.port.")
    subjects: Public[bool] = Field(
        False, description="Include the series labelled with key and team names (budget spend "
        "and limits) when no key is asked for (access public, or metrics.port); an admin's key, "
        "or a key without a team, always gets them."
    )


class Server(_Model):
    """Where and how the gateway listens."""

    host: Public[str] = Field("127.0.0.1", description="Bind address.")
    port: Public[int] = Field(4000, ge=0, le=65535, description="Bind port.")
    allow_public_without_keys: Public[bool] = Field(
        False, description="Allow binding a non-loopback address while no client keys exist."
    )
    drain_timeout_s: Public[float] = Field(
        30.0, ge=0, description="On shutdown, how long requests in flight may take to finish."
    )
    max_body_bytes: Public[int] = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    region: Public[str | None] = Field(
        None, description="The region or zone of this replica, written into each record."
    )
    data_dir: Public[str] = Field(
        "data", description="Folder for the embedded database and the recorder's spool file."
    )
    header_timeout_s: Public[float] = Field(
        10.0, gt=0, le=300, description="Time a client has to send a request's line and headers "
        "(from the connection's opening, or the request's first byte); slower ones get a 408."
    )
    max_connections: Public[int] = Field(
        10000, ge=1, description="Open client connections; one more is answered 503 and closed."
    )
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings, description="Who may read /metrics, and where."
    )
    public_origins: Public[list[str]] = Field(
        default_factory=list, description="Origins the dashboard is reached at through a proxy "
        "that changes the host (https://warden.example.com); a change made with a session "
        "cookie must come from one of them, or from the Host the request was sent to."
    )
    trusted_proxies: Public[list[str]] = Field(
        default_factory=list, description="Addresses or networks (10.0.0.0/8) of proxies whose "
        "X-Forwarded-Host is believed; from anyone else that header is ignored."
    )

    @field_validator("public_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in (
                    "", "/"):
                raise ValueError(f"public_origins: '{origin}' is not an origin; write "
                                 "scheme://host[:port], e.g. https://warden.example.com")
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: '{proxy}' is not an IP address or network "
                                 "(10.0.0.5, 10.0.0.0/8)") from None
        return proxies


class StoreSettings(_Model):
    """Where request records are kept."""

    url: Url[str | None] = Field(
        None, description="sqlite:///path/warden.db or postgresql://user@host/db; unset = "
        "sqlite in server.data_dir."
    )
    payloads: Public[PayloadPolicy] = Field(
        "full", description="Prompt and completion text kept with each record: full, redacted, none."
    )
    retention_days: Public[float | None] = Field(
        30, gt=0, description="Records older than this are deleted by a background sweep; "
        "unset = kept forever."
    )
    queue_size: Public[int] = Field(10000, ge=100, description="Records buffered in memory before the "
                            "recorder spools to disk.")
    cache_mib: Public[int] = Field(
        128, ge=0, description="Memory for the statistics kept between queries (hour blocks and "
        "merged ranges, 8 bytes a latency): a million records take ~12 MiB per filter and "
        "grouping. Least recently used first out; 0 = keep none."
    )


class TracingSettings(_Model):
    """OpenTelemetry traces: one span per request, children per stage and upstream attempt."""

    otlp_endpoint: Url[str | None] = Field(
        None, description="OTLP/HTTP collector, e.g. http://collector:4318 (/v1/traces is added "
        "when the path is empty); unset = no spans are exported."
    )
    headers: Secret[dict[str, str]] = Field(
        default_factory=dict, description="Extra headers sent to the collector (e.g. auth)."
    )
    service_name: Public[str] = Field("warden", description="The service.name resource attribute.")
    sample_ratio: Public[float] = Field(
        1.0, ge=0.0, le=1.0, description="Share of new traces exported; a client's traceparent "
        "decides for its own trace (parent-based)."
    )
    queue_size: Public[int] = Field(
        20000, ge=100, description="Spans buffered for export; past it new spans are dropped "
        "and counted."
    )
    timeout_s: Public[float] = Field(10.0, gt=0, description="Time limit of one export call.")


class UiSettings(_Model):
    """The dashboard at /ui: its login sessions."""

    session_secret: Secret[str | None] = Field(
        None, min_length=16, description="Signs the dashboard's session cookies (HMAC-SHA256); "
        "use ${ENV}. Unset = a random secret per process: sessions end on restart, and replicas "
        "behind one load balancer must share a set value."
    )
    session_hours: Public[float] = Field(
        12.0, gt=0, le=720, description="How long a dashboard login lasts."
    )

    @field_validator("session_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, secret: object) -> object:
        return secret or None  # ${WARDEN_SESSION_SECRET:-} left empty


class Config(_Model):
    """The whole of ``warden.yaml``."""

    server: Server = Field(default_factory=Server, description="Listener settings.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Request records.")
    tracing: TracingSettings = Field(
        default_factory=TracingSettings, description="OpenTelemetry trace export."
    )
    guard: GuardSettings = Field(
        default_factory=GuardSettings, description="Guardrail policies (scanners and actions)."
    )
    admin_key: Secret[str | None] = Field(
        None, description="Bearer token for /api/...; WARDEN_ADMIN_KEY overrides it."
    )
    keys: list[ClientKey] = Field(
        default_factory=list, description="Client keys; with none, /v1 is open (loopback only)."
    )
    models: list[ModelRoute] = Field(default_factory=list, description="Public models.")
    limits: Limits = Field(
        default_factory=Limits, description="Requests and tokens per minute, and where counts live."
    )
    budgets: list[Budget] = Field(
        default_factory=list, description="Spend in USD per key or team per calendar period."
    )
    ui: UiSettings = Field(
        default_factory=UiSettings, description="The dashboard at /ui (login sessions)."
    )

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelRoute]) -> list[ModelRoute]:
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model name(s) {dupes} appear more than once")
        return models

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> Config:
        names = {m.name for m in self.models}
        for i, m in enumerate(self.models):
            for j, fb in enumerate(m.routing.fallbacks):
                where = f"models[{i}].routing.fallbacks[{j}]"
                if fb == m.name:
                    raise ValueError(f"{where}: model '{m.name}' lists itself as a fallback")
                if fb not in names:
                    raise ValueError(f"{where}: model '{m.name}' falls back to unknown model "
                                     f"'{fb}'{hint(fb, names)}")
        return self

    @model_validator(mode="after")
    def _guard_policies_exist(self) -> Config:
        names = set(self.guard.policies)
        refs = [(f"models[{i}].guard", m.guard) for i, m in enumerate(self.models)]
        refs += [(f"keys[{i}].guard", k.guard) for i, k in enumerate(self.keys)]
        for where, name in refs:
            if name is not None and name not in names:
                raise ValueError(f"{where}: unknown guard policy '{name}'{hint(name, names)} "
                                 f"(guard.policies defines: {', '.join(sorted(names)) or 'none'})")
        return self

    def model(self, name: str) -> ModelRoute | None:
        for m in self.models:
            if m.name == name:
                return m
        return None


# --- loading -------------------------------------------------------------------------------

_ENV = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            escaped, name, default = match.group(1), match.group(2), match.group(3)
            if escaped:
                return match.group(0)[1:]
            value = env.get(name)
            if value:
                return value
            if default is not None:
                return default  # as in the shell, ":-" also covers a variable set but empty
            if value is not None:
                return value
            raise ConfigError(
                f"{path or '<root>'}: environment variable {name} is not set; "
                f"set it, or write ${{{name}:-default}} to give a default"
            )
        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def parse_config(data: Any, env: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML tree into a Config, raising ConfigError with key paths."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping at the top level (keys like models:)")
    data = expand_env(data, os.environ if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file (``warden.config_file`` bounds what it may cost)."""
    p = Path(path)
    text = read_text(p)
    try:
        config = parse_config(parse_yaml(text), env)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    # A relative data folder belongs next to the config file, wherever the gateway is started.
    data_dir = Path(config.server.data_dir)
    if not data_dir.is_absolute():
        server = config.server.model_copy(update={"data_dir": str(p.resolve().parent / data_dir)})
        config = config.model_copy(update={"server": server})
    return config


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = _format_loc(loc)
        if err["type"] == "extra_forbidden":
            known = _fields_at(Config, loc[:-1])
            lines.append(f"{where}: unknown key{hint(str(loc[-1]), known)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(msg if not loc else f"{where}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines)


def did_you_mean(word: str, candidates: set[str] | list[str]) -> str:
    """'; did you mean ...?' for the closest candidate, or nothing."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def hint(word: str, candidates: set[str] | list[str]) -> str:
    """'; did you mean ...?' for the closest candidate, or the list of valid ones."""
    close = did_you_mean(word, candidates)
    if close:
        return close
    if candidates:
        return f"; valid keys here: {', '.join(sorted(candidates))}"
    return ""


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> set[str]:
    """The field names of the model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return set()
        field = current.model_fields.get(part)
        if field is None:
            return set()
        current = _unwrap(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return set(current.model_fields)
    return set()


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (list, tuple):
        return _unwrap(get_args(annotation)[0])
    if origin is not None:
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return annotation
