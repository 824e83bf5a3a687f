"""docs/configuration.md documents every config key and every built-in provider param, and the
example files in the repository are valid configs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from warden.config import Config, load_config, parse_config
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.providers.base import ProviderParams
from warden.runtime import build_runtime

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "examples" / "warden.yaml"

ModelAt = tuple[str, type[BaseModel]]


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models inside an annotation (through list[...], X | None, dict[..., X])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        yield from _models_in(arg)


def config_models() -> list[ModelAt]:
    """Every model reachable from Config, with its path in warden.yaml (``models[].routing``)."""
    out: list[ModelAt] = []

    def walk(path: str, model: type[BaseModel]) -> None:
        out.append((path, model))
        for name, field in model.model_fields.items():
            is_list = get_origin(field.annotation) is list
            child = f"{path}.{name}" if path != "warden.yaml" else name
            for sub in _models_in(field.annotation):
                walk(child + ("[]" if is_list else ""), sub)

    walk("warden.yaml", Config)
    return out


def registry() -> ProviderRegistry:
    return ProviderRegistry(make_plugin_manager())


def builtin_params() -> list[tuple[str, type[ProviderParams]]]:
    """The Params of each built-in provider (the plugins Warden ships, not installed ones)."""
    builtins = ProviderRegistry(make_plugin_manager(entry_points=False))
    return [(name, builtins.get(name, "test").Params) for name in builtins.names()]


def _headings(lines: list[str]) -> Iterator[tuple[int, int]]:
    """(line index, level) of each Markdown heading, skipping fenced code blocks."""
    fenced = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#+) ", line)
        if m:
            yield i, len(m.group(1))


def section(doc: str, title: str) -> str:
    """The text under the first heading that contains ``title``, up to the next heading of the
    same or a higher level."""
    lines = doc.splitlines()
    heads = list(_headings(lines))
    for n, (i, level) in enumerate(heads):
        if title in lines[i]:
            end = next((j for j, lv in heads[n + 1:] if lv <= level), len(lines))
            return "\n".join(lines[i + 1:end])
    raise AssertionError(f"docs/configuration.md has no heading containing {title}")


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _id(value: object) -> str:
    return value if isinstance(value, str) else getattr(value, "__name__", repr(value))


def _undocumented(fields: dict[str, FieldInfo], text: str) -> list[str]:
    """The fields without a row of their own (``| `name` | type | ...``) in a reference table."""
    return [name for name in fields if f"| `{name}` |" not in text]


@pytest.mark.parametrize(("path", "model"), config_models(), ids=_id)
def test_every_config_key_has_a_description(path: str, model: type[BaseModel]) -> None:
    missing = [n for n, f in model.model_fields.items() if not f.description]
    assert not missing, f"{model.__name__} ({path}): add Field(description=...) to {missing}"


@pytest.mark.parametrize(("path", "model"), config_models(), ids=_id)
def test_every_config_key_is_in_the_reference(doc: str, path: str, model: type[BaseModel]) -> None:
    missing = _undocumented(model.model_fields, section(doc, f"`{path}`"))
    assert not missing, f"docs/configuration.md, section `{path}`: document {missing}"


def test_the_walk_reaches_every_config_model() -> None:
    paths = dict(config_models())
    assert {"server", "keys[]", "models[]", "models[].routing", "models[].routing.breaker",
            "models[].routing.health_check", "models[].deployments[]",
            "models[].deployments[].timeouts"} <= set(paths)


@pytest.mark.parametrize(("provider", "params"), builtin_params(), ids=_id)
def test_every_builtin_provider_param_is_described_and_documented(
    doc: str, provider: str, params: type[ProviderParams]
) -> None:
    missing = [n for n, f in params.model_fields.items() if not f.description]
    assert not missing, f"provider {provider}: add Field(description=...) to {missing}"
    text = section(section(doc, "Provider params"), f"`{provider}`")
    missing = _undocumented(params.model_fields, text)
    assert not missing, f"docs/configuration.md, provider `{provider}`: document {missing}"


def test_the_builtin_providers_include_openai_and_fake() -> None:
    assert {"openai", "fake"} <= {name for name, _ in builtin_params()}


def test_the_example_file_is_a_valid_config() -> None:
    config = load_config(EXAMPLE, env={})
    build_runtime(config, registry(), env={})
    providers = {d.provider for m in config.models for d in m.deployments}
    assert providers == {"openai", "anthropic", "fake"}
    assert any(m.routing.fallbacks for m in config.models)


def test_the_example_file_takes_its_secrets_from_the_environment() -> None:
    env = {"OPENAI_API_KEY": "sk-real-openai", "ANTHROPIC_API_KEY": "sk-ant-real",
           "WARDEN_KEY_BACKEND": "sk-warden-backend-1"}
    config = load_config(EXAMPLE, env=env)
    keys = {d.id: d.api_key for m in config.models for d in m.deployments}
    assert keys["openai-gpt-4o"] == "sk-real-openai"
    assert keys["anthropic-sonnet"] == "sk-ant-real"
    assert config.keys[0].key == "sk-warden-backend-1"


def _yaml_blocks(doc: str) -> list[Any]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)]


def test_the_yaml_examples_in_the_reference_are_valid_configs(doc: str) -> None:
    blocks = [b for b in _yaml_blocks(doc) if isinstance(b, dict) and "models" in b]
    assert len(blocks) >= 2
    # Set the variables written without a default; those with one take it.
    env = {name: "value-of-" + name for name in re.findall(r"\$\{(\w+)\}", doc)}
    for data in blocks:
        build_runtime(parse_config(data, env=env), registry(), env={})


def test_the_full_example_in_the_reference_sets_every_key(doc: str) -> None:
    full = [b for b in _yaml_blocks(doc) if isinstance(b, dict) and "server" in b][-1]
    found: set[str] = set()

    def keys(value: Any) -> None:
        if isinstance(value, dict):
            found.update(map(str, value))
            for v in value.values():
                keys(v)
        elif isinstance(value, list):
            for v in value:
                keys(v)

    keys(full)
    every = {n for _, m in config_models() for n in m.model_fields}
    assert every <= found, f"add {sorted(every - found)} to the full example"
