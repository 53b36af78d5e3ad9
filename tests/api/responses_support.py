"""Helpers of the Responses API front-end tests (the fixtures are in ``responses_fixtures``): the catalogue
models, every provider played by the fake upstream, what the fake received, SSE parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.server import FakeUpstream

MODELS = ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
TRANSLATED = ["claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
OPENAI, ANTHROPIC, GEMINI = "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash"
UPSTREAM_ID = {"compat-llama": "llama3"}
UPSTREAM_PATH = {
    "gpt-4o-mini": "/v1/responses",
    "claude-3-5-sonnet-20241022": "/v1/messages",
    "compat-llama": "/v1/chat/completions",
}
DATA = Path(__file__).parent / "data"


def upstream_id(name: str) -> str:
    return UPSTREAM_ID.get(name, name)


def sent(upstream: FakeUpstream, index: int = -1) -> dict[str, Any]:
    body = upstream.requests[index].body
    assert isinstance(body, dict)
    return body


def sse_events(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(event name, data) of every event of an SSE body."""
    out = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            out.append((name, json.loads("\n".join(data))))
    return out
