"""One real ``switchyard serve`` process for the whole session, its catalogue pointed at the session's fake
upstream (tests/fakes), the fake provider keys in its environment. The clients under test talk to it over
loopback HTTP exactly as they would to any OpenAI-compatible endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.clients.gateway_process import GatewayProcess, serve
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, fake_models, write_config

# Clients that would reach the network on their own: litellm's price map, openai-agents' trace export.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("LANGSMITH_TRACING", "false")

CLIENT_KEY = "sk-client-side-key-not-checked"  # the gateway runs without access control here


@pytest.fixture(scope="session")
def gateway(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway process; no retries and no fallbacks, so each scripted reply answers one call."""
    folder = tmp_path_factory.mktemp("gateway")
    models = fake_models(fake_upstream.base_url)
    for entry in models.values():
        entry["timeout_s"] = 15
    config = write_config(folder, {"models": models, "orchestration": {"max_retries": 0}})
    with serve(config, folder / "serve.log", TEST_KEYS) as process:
        yield process
    log = process.log()
    for key in TEST_KEYS.values():
        assert key not in log, "a provider key reached the gateway's log"


@pytest.fixture
def base_url(gateway: GatewayProcess, upstream: FakeUpstream) -> str:
    """The gateway's OpenAI base URL, with the fake upstream reset for this test."""
    return gateway.openai_base_url
