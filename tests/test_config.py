"""Loading warden.yaml: env expansion, refusal of unknown keys and bad values with their path,
cross-key checks, provider params, and files that cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from warden.config import Config, load_config, parse_config
from warden.defaults import default_config, local_chat_available, local_embeddings_available
from warden.errors import ConfigError
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.runtime import build_runtime


def dep(**fields: Any) -> dict[str, Any]:
    return {"id": "d1", "provider": "fake", **fields}


def model(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "deployments": [dep()], **fields}


def refused(data: Any, env: dict[str, str] | None = None) -> str:
    """The message of the ConfigError that parsing ``data`` raises."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=env or {})
    return str(info.value)


def build(data: dict[str, Any]) -> None:
    build_runtime(parse_config(data, env={}), ProviderRegistry(make_plugin_manager()), env={})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warden.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- environment variables -----------------------------------------------------------------


def test_a_set_variable_is_expanded_inside_a_string() -> None:
    config = parse_config({"models": [model(deployments=[dep(
        api_key="${OPENAI_API_KEY}", base_url="http://${UP_HOST}:8000/v1")])]},
        env={"OPENAI_API_KEY": "sk-live-123", "UP_HOST": "10.0.0.7"})
    d = config.models[0].deployments[0]
    assert (d.api_key, d.base_url) == ("sk-live-123", "http://10.0.0.7:8000/v1")


def test_a_default_is_used_when_the_variable_is_unset_or_empty() -> None:
    data = {"admin_key": "${ADMIN:-fallback-admin}", "models": [model(name="${NAME:-m}")]}
    assert parse_config(data, env={}).admin_key == "fallback-admin"
    assert parse_config(data, env={"ADMIN": ""}).admin_key == "fallback-admin"
    config = parse_config(data, env={"ADMIN": "from-env", "NAME": "gpt"})
    assert (config.admin_key, config.models[0].name) == ("from-env", "gpt")


def test_a_variable_set_to_empty_expands_to_empty_without_a_default() -> None:
    assert parse_config({"admin_key": "${ADMIN}"}, env={"ADMIN": ""}).admin_key == ""


def test_an_empty_default_gives_an_empty_string() -> None:
    assert parse_config({"admin_key": "${ADMIN:-}"}, env={}).admin_key == ""


def test_a_missing_variable_is_an_error_naming_the_key_and_the_variable() -> None:
    message = refused({"models": [model(deployments=[dep(api_key="${OPENAI_API_KEY}")])]})
    assert "models[0].deployments[0].api_key" in message
    assert "OPENAI_API_KEY is not set" in message
    assert "${OPENAI_API_KEY:-default}" in message  # says how to fix it


def test_a_missing_variable_in_a_file_names_the_file_too(tmp_path: Path) -> None:
    path = write(tmp_path, "keys:\n  - key: ${TEAM_KEY}\n")
    with pytest.raises(ConfigError, match=r"warden\.yaml: keys\[0\]\.key: environment variable "
                                          r"TEAM_KEY is not set"):
        load_config(path, env={})


def test_a_double_dollar_escapes_expansion() -> None:
    config = parse_config({"admin_key": "$${HOME}-and-${X}", "models": [model(
        deployments=[dep(headers={"x-template": "$${USER:-nobody}"})])]},
        env={"HOME": "/root", "X": "x", "USER": "alice"})
    assert config.admin_key == "${HOME}-and-x"
    assert config.models[0].deployments[0].headers == {"x-template": "${USER:-nobody}"}


@pytest.mark.parametrize("value", [
    "a: b", "# not a comment", "[1, {x: y}]", "'single' \"double\"", "&anchor *alias",
    "line one\nline two", "0123", "true", "null", "${NOT_EXPANDED_AGAIN}",
])
def test_an_expanded_value_is_taken_literally_not_parsed_as_yaml(
    tmp_path: Path, value: str
) -> None:
    path = write(tmp_path, "admin_key: ${SECRET}\nmodels:\n  - name: m\n"
                           "    deployments: [{id: d1, provider: fake, api_key: \"${SECRET}\"}]\n")
    config = load_config(path, env={"SECRET": value})
    assert config.admin_key == value
    assert config.models[0].deployments[0].api_key == value


def test_an_expanded_number_or_boolean_is_converted_for_typed_keys() -> None:
    config = parse_config({
        "server": {"port": "${PORT:-8080}", "allow_public_without_keys": "${OPEN:-false}"},
        "models": [model(routing={"retries": "${RETRIES}"})],
    }, env={"RETRIES": "4"})
    assert (config.server.port, config.server.allow_public_without_keys) == (8080, False)
    assert config.models[0].routing.retries == 4


def test_an_expanded_value_is_still_validated() -> None:
    assert "server.port: Input should be a valid integer" in refused(
        {"server": {"port": "${PORT}"}}, env={"PORT": "eighty"})


# --- unknown keys ----------------------------------------------------------------------------


def test_an_unknown_top_level_key_is_refused_with_a_suggestion() -> None:
    assert "modles: unknown key; did you mean 'models'?" in refused({"modles": []})


def test_an_unknown_nested_key_is_refused_with_its_full_path() -> None:
    message = refused({"models": [model(routing={"stratgy": "round-robin"})]})
    assert "models[0].routing.stratgy: unknown key; did you mean 'strategy'?" in message


def test_an_unknown_key_deep_in_a_list_is_refused_with_its_full_path() -> None:
    message = refused({"models": [model(), model("n", deployments=[
        dep(), dep(id="d2", timeouts={"totl_s": 5})])]})
    assert "models[1].deployments[1].timeouts.totl_s: unknown key; did you mean 'total_s'?" in message


def test_an_unknown_key_with_no_close_match_lists_the_valid_keys() -> None:
    message = refused({"server": {"colour": "red"}})
    assert "server.colour: unknown key; valid keys here: allow_public_without_keys, " \
           "data_dir, drain_timeout_s, header_timeout_s, host, max_body_bytes, " \
           "max_connections, metrics, port, public_origins" in message


# --- wrong types and values ------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [
    ({"server": {"port": "http"}}, "server.port: Input should be a valid integer"),
    ({"server": {"port": 70000}}, "server.port: Input should be less than or equal to 65535"),
    ({"server": {"host": ["a"]}}, "server.host: Input should be a valid string"),
    ({"models": {"name": "m"}}, "models: Input should be a valid list"),
    ({"models": [model(routing={"retries": -1})]},
     "models[0].routing.retries: Input should be greater than or equal to 0"),
    ({"models": [model(routing={"strategy": "fastest"})]},
     "models[0].routing.strategy: Input should be 'weighted', 'round-robin', 'least-latency' or "
     "'least-in-flight'"),
    ({"models": [model(routing={"breaker": {"cooldown_s": 0}})]},
     "models[0].routing.breaker.cooldown_s: Input should be greater than 0"),
    ({"models": [model(deployments=[dep(weight=0)])]},
     "models[0].deployments[0].weight: Input should be greater than 0"),
    ({"models": [model(deployments=[])]}, "models[0].deployments: List should have at least 1 item"),
    ({"models": [{"name": "m"}]}, "models[0].deployments: Field required"),
    ({"keys": [{"key": "short"}]}, "keys[0].key: String should have at least 8 characters"),
    ({"keys": [{"key": "long-enough", "models": "m"}]}, "keys[0].models: Input should be a valid list"),
])
def test_a_wrong_type_or_value_is_refused_with_its_path(data: dict[str, Any], expected: str) -> None:
    assert expected in refused(data)


def test_every_problem_of_a_file_is_reported_together() -> None:
    message = refused({"server": {"port": -1, "hots": "x"},
                       "models": [model(routing={"retries": 99})]})
    assert message.startswith("invalid config:")
    for where in ("server.port:", "server.hots: unknown key; did you mean 'host'?",
                  "models[0].routing.retries:"):
        assert where in message


# --- checks across keys ----------------------------------------------------------------------


def test_duplicate_model_names_are_refused() -> None:
    message = refused({"models": [model("gpt"), model("other"), model("gpt")]})
    assert "models: model name(s) ['gpt'] appear more than once" in message


def test_duplicate_deployment_ids_within_a_model_are_refused() -> None:
    message = refused({"models": [model("gpt", deployments=[dep(id="a"), dep(id="b"), dep(id="a")])]})
    assert "models[0]: deployment id 'a' appears twice in model 'gpt'" in message


def test_the_same_deployment_id_in_two_models_is_allowed() -> None:
    config = parse_config({"models": [model("a"), model("b")]}, env={})
    assert [m.deployments[0].id for m in config.models] == ["d1", "d1"]


def test_a_fallback_to_an_unknown_model_is_refused_with_a_suggestion() -> None:
    message = refused({"models": [model("gpt", routing={"fallbacks": ["claud"]}), model("claude")]})
    assert "model 'gpt' falls back to unknown model 'claud'; did you mean 'claude'?" in message


def test_a_model_falling_back_to_itself_is_refused() -> None:
    message = refused({"models": [model("gpt", routing={"fallbacks": ["gpt"]})]})
    assert "model 'gpt' lists itself as a fallback" in message


def test_models_may_fall_back_to_each_other() -> None:
    config = parse_config({"models": [model("a", routing={"fallbacks": ["b"]}),
                                      model("b", routing={"fallbacks": ["a"]})]}, env={})
    a = config.model("a")
    assert a is not None and a.routing.fallbacks == ["b"]


# --- providers -------------------------------------------------------------------------------


def test_an_unknown_provider_is_refused_naming_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        build({"models": [model(deployments=[dep(provider="openia")])]})
    message = str(info.value)
    assert "models[0].deployments[0].provider: unknown provider 'openia'" in message
    assert "openai" in message and "fake" in message


def test_a_bad_provider_param_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        build({"models": [model(deployments=[dep(params={"ttft_ms": -5})])]})
    assert "models[0].deployments[0].params.ttft_ms: Input should be greater than or equal to 0" \
        in str(info.value)


def test_an_unknown_provider_param_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"models\[1\]\.deployments\[0\]\.params\.streaming_usage"):
        build({"models": [model("a"), model("b", deployments=[
            dep(provider="openai", params={"streaming_usage": True})])]})


def test_valid_provider_params_build_a_runtime() -> None:
    build({"models": [model(deployments=[
        dep(params={"ttft_ms": 5, "tokens_per_s": 100, "reply": "hi"}),
        dep(id="d2", provider="openai", base_url="http://127.0.0.1:9/v1",
            params={"stream_usage": False, "organization": "org-1"}),
    ])]})


# --- files ------------------------------------------------------------------------------------


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass --config with a valid path"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"warden\.yaml: not valid YAML"):
        load_config(path, env={})


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping at the top level"):
        load_config(write(tmp_path, text), env={})


def test_an_empty_file_means_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing yet\n"), env={})
    # Every default, with the relative data folder placed next to the config file.
    assert config.server.data_dir == str(tmp_path.resolve() / "data")
    server = config.server.model_copy(update={"data_dir": "data"})
    assert config.model_copy(update={"server": server}) == Config()


def test_a_valid_file_loads_with_its_defaults_filled_in(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - name: echo\n    deployments:\n"
                           "      - {id: e1, provider: fake, weight: 2}\n")
    config = load_config(path, env={})
    route = config.models[0]
    assert (config.server.host, config.server.port) == ("127.0.0.1", 4000)
    assert (route.routing.strategy, route.routing.retries) == ("least-latency", 2)
    assert route.deployments[0].weight == 2.0
    assert route.deployments[0].model is None


def test_the_zero_config_default_serves_local_models_on_loopback() -> None:
    defaults = default_config()
    config = defaults.config
    names = [m.name for m in config.models]
    if local_chat_available():
        assert "smollm2" in names
    if local_embeddings_available():
        assert "minilm" in names
    if not (local_chat_available() or local_embeddings_available()):
        assert names == ["echo"] and "local extra" in defaults.notes[0]
    assert config.server.host == "127.0.0.1" and not config.keys
    build_runtime(config, ProviderRegistry(make_plugin_manager()), env={})


def test_public_origins_and_trusted_proxies_are_checked() -> None:
    assert "is not an origin" in refused({"server": {"public_origins": ["warden.example.com"]}})
    assert "is not an origin" in refused(
        {"server": {"public_origins": ["https://warden.example.com/ui"]}})
    assert "is not an IP address or network" in refused(
        {"server": {"trusted_proxies": ["proxy.internal"]}})
    config = parse_config({"server": {"public_origins": ["https://warden.example.com"],
                                      "trusted_proxies": ["10.0.0.0/8", "::1"]}}, env={})
    assert config.server.trusted_proxies == ["10.0.0.0/8", "::1"]
