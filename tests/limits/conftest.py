"""Fixtures of the limits tests: a real Redis server, and a key prefix of each test's own.

The Redis tests use the server of WARDEN_TEST_REDIS_URL; without the variable they skip, and
with it set but the server unreachable they fail: CI must never pass by skipping them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    """WARDEN_TEST_REDIS_URL, checked once to answer a PING."""
    url = os.environ.get("WARDEN_TEST_REDIS_URL", "")
    if not url:
        pytest.skip("WARDEN_TEST_REDIS_URL is not set: set it to a Redis server's URL (CI uses "
                    "redis://127.0.0.1:6379/0) to run this test")
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"WARDEN_TEST_REDIS_URL is set but Redis at {url} cannot be reached ({exc}); "
                    "start the server, or unset the variable to skip these tests")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    prefix = f"warden-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
