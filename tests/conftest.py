"""Fixtures shared by every test package."""

import os
from collections.abc import Iterator

import pytest

from tests.support import TEST_KEYS

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The fake provider keys (``tests.support.TEST_KEYS``) set in the environment for this test."""
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)
    return TEST_KEYS


@pytest.fixture(autouse=True, scope="session")
def _state_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Apps and servers that name no ``state_path`` keep their embedded store (stored responses, routing
    decisions) in a session temporary directory, never in the working directory."""
    previous = os.environ.get("SWITCHYARD_STATE_PATH")
    os.environ["SWITCHYARD_STATE_PATH"] = str(tmp_path_factory.mktemp("state") / "switchyard-state.db")
    yield
    if previous is None:
        os.environ.pop("SWITCHYARD_STATE_PATH", None)
    else:
        os.environ["SWITCHYARD_STATE_PATH"] = previous
