"""What the running config may show: every setting carries a visibility mark, and rendering by
those marks hides credentials wherever they sit."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, Field

from warden.config import Config, parse_config
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.visibility import MASK, Public, Shown, bare_url, mark_of, shown


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def unmarked(model: type[BaseModel], where: str = "", seen: set[type] | None = None) -> list[str]:
    """The paths of the settings under ``model`` that carry no visibility mark."""
    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    missing = []
    for name, field in model.model_fields.items():
        path = f"{where}.{name}" if where else name
        inner = _models_in(field.annotation)
        if inner:
            for sub in inner:
                missing += unmarked(sub, path, seen)
        elif mark_of(field) is None:
            missing.append(path)
    return missing


def test_every_setting_of_the_config_has_a_visibility_mark() -> None:
    assert unmarked(Config) == []


def test_every_param_of_every_provider_has_a_visibility_mark() -> None:
    registry = ProviderRegistry(make_plugin_manager())
    missing = [f"{name}: {path}" for name in registry.names()
               for path in unmarked(registry.get(name, "").Params)]
    assert missing == []


def test_the_schema_walk_finds_a_setting_added_without_a_mark() -> None:
    class Inner(BaseModel):
        fine: Public[int] = 1
        forgotten: str = "x"

    class Outer(BaseModel):
        inner: list[Inner] = Field(default_factory=list)
        also_forgotten: dict[str, str] = Field(default_factory=dict)

    assert unmarked(Outer) == ["inner.forgotten", "also_forgotten"]
    assert shown(Outer(inner=[Inner()], also_forgotten={"a": "b"})) == {
        "inner": [{"fine": 1, "forgotten": MASK}], "also_forgotten": {"a": MASK}}


def test_the_marks_are_in_the_json_schema() -> None:
    props = Config.model_json_schema()["$defs"]["StoreSettings"]["properties"]
    assert props["url"]["x-shown"] == Shown.URL.value
    assert props["payloads"]["x-shown"] == Shown.PUBLIC.value


SECRETS = ["s3cr3t-pw", "redis-pw", "otlp-token", "upstream-token", "org-123456",
           "sk-upstream-key", "the-admin-key", "sk-client-0001", "a-session-secret-0123"]


def hostile_config() -> Config:
    return parse_config({
        "admin_key": "the-admin-key",
        "store": {"url": "postgresql://warden:s3cr3t-pw@db:5432/warden?sslpassword=s3cr3t-pw"},
        "limits": {"redis_url": "redis://:redis-pw@cache:6379/0"},
        "tracing": {"otlp_endpoint": "http://collector:4318", "headers": {
            "authorization": "Bearer otlp-token"}},
        "ui": {"session_secret": "a-session-secret-0123"},
        "keys": [{"key": "sk-client-0001", "name": "team-app", "tags": {"env": "prod"}}],
        "models": [{"name": "gpt", "deployments": [{
            "id": "up", "provider": "openai", "api_key": "sk-upstream-key",
            "base_url": "https://user:upstream-token@api.example.com/v1?token=upstream-token",
            "headers": {"x-api-token": "upstream-token"},
            "params": {"organization": "org-123456", "stream_usage": False}}]}],
    }, env={})


def render(config: Config) -> dict[str, Any]:
    registry = ProviderRegistry(make_plugin_manager())
    return shown(config, lambda name: registry.get(name, "").Params
                 if name in registry.names() else None)


def test_no_credential_is_shown_wherever_it_sits() -> None:
    text = repr(render(hostile_config()))
    assert [s for s in SECRETS if s in text] == []


def test_what_is_safe_is_shown_and_urls_keep_their_host() -> None:
    view = render(hostile_config())
    dep = view["models"][0]["deployments"][0]
    assert dep["base_url"] == "https://***@api.example.com/v1?token=***"
    assert dep["headers"] == {"x-api-token": MASK}
    assert dep["params"] == {"organization": MASK, "stream_usage": False}
    assert dep["api_key"] == MASK and dep["provider"] == "openai"
    assert view["store"]["url"] == "postgresql://***@db:5432/warden?sslpassword=***"
    assert view["limits"]["redis_url"] == "redis://***@cache:6379/0"
    assert view["tracing"]["headers"] == {"authorization": MASK}
    assert view["tracing"]["otlp_endpoint"] == "http://collector:4318"
    assert view["keys"][0] == {**view["keys"][0], "key": MASK, "name": "team-app",
                               "tags": {"env": "prod"}}
    assert view["admin_key"] == MASK and view["ui"]["session_secret"] == MASK
    assert view["server"]["port"] == 4000


def test_params_of_an_unknown_provider_are_all_masked() -> None:
    config = parse_config({"models": [{"name": "m", "deployments": [{
        "id": "x", "provider": "fake", "params": {"reply": "hi"}}]}]}, env={})
    assert shown(config)["models"][0]["deployments"][0]["params"] == {"reply": MASK}


def test_a_url_that_cannot_be_parsed_is_masked_whole() -> None:
    assert bare_url("http://[::1") == MASK
    assert bare_url("sqlite:///data/warden.db") == "sqlite:///data/warden.db"
