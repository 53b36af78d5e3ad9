"""What the Responses API client tests share: a real ``switchyard serve`` whose stored responses live in the
test's temporary folder (not the working directory), and checks of what the fake upstream received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.clients.gateway_process import GatewayProcess, serve
from tests.fakes.server import FakeUpstream, RecordedRequest
from tests.support import TEST_KEYS, fake_models, write_config

UPSTREAM_PATH = {
    "gpt-4o-mini": "/v1/responses",  # OpenAI's own Responses API: the pass-through
    "claude-3-5-sonnet-20241022": "/v1/messages",
    "compat-llama": "/v1/chat/completions",
}


@contextmanager
def responses_gateway(upstream: FakeUpstream, folder: Path) -> Iterator[GatewayProcess]:
    models = fake_models(upstream.base_url)
    for entry in models.values():
        entry["timeout_s"] = 15
    config = write_config(folder, {"models": models, "orchestration": {"max_retries": 0}})
    env = {**TEST_KEYS, "SWITCHYARD_STATE_PATH": str(folder / "state.db")}
    with serve(config, folder / "serve.log", env) as process:
        yield process
    log = process.log()
    for key in TEST_KEYS.values():
        assert key not in log, "a provider key reached the gateway's log"


def generation_requests(upstream: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in upstream.requests if r.path != "/v1/models"]


def check_path(request: RecordedRequest, model: str) -> None:
    if model in UPSTREAM_PATH:
        assert request.path == UPSTREAM_PATH[model], request.path
    else:
        assert "gemini" in request.path, request.path


def tool_names(request: RecordedRequest) -> list[str]:
    """The function tools a vendor request offered, whatever the vendor's form."""
    body: Any = request.body
    tools = body.get("tools") or []
    if request.path.endswith(":generateContent") or request.path.endswith(":streamGenerateContent"):
        return [f["name"] for t in tools for f in t.get("functionDeclarations", [])]
    if request.path == "/v1/chat/completions":
        return [t["function"]["name"] for t in tools]
    return [t["name"] for t in tools]


def carries(request: RecordedRequest, text: str) -> bool:
    return text in json.dumps(request.body)
