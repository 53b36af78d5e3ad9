"""Pytest fixtures for the fake upstream; enable with ``pytest_plugins = ["tests.fakes.fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.server import FakeUpstream


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """One fake upstream server for the whole session (not reset between tests)."""
    server = FakeUpstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> FakeUpstream:
    """The session's fake upstream, reset (scripts, recordings, counters) for this test."""
    fake_upstream.reset()
    return fake_upstream
