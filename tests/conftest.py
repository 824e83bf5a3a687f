from __future__ import annotations

from collections.abc import Iterator

import pytest

from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIUpstream]:
    """A fake OpenAI-compatible upstream on a free loopback port."""
    up = FakeOpenAIUpstream()
    with ServerThread(up.http):
        yield up
