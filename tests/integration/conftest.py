"""Fixtures of the integration tests."""

from collections.abc import AsyncIterator

import pytest

from tests.fakes.server import FakeUpstream
from tests.integration.orchestration_harness import Harness


@pytest.fixture
async def harness(upstream: FakeUpstream) -> AsyncIterator[Harness]:
    """An orchestration harness on the fake upstream; its registry is closed after the test."""
    h = Harness(upstream)
    yield h
    if h.registry is not None:
        await h.registry.aclose()
