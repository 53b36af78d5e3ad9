"""Fixtures shared by every test package."""

import pytest

from tests.support import TEST_KEYS

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The fake provider keys (``tests.support.TEST_KEYS``) set in the environment for this test."""
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)
    return TEST_KEYS
