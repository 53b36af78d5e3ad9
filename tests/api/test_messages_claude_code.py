"""A recorded Claude Code request (system blocks with ``cache_control``, fifteen tools with JSON schemas,
thinking, the ``anthropic-beta`` header, streamed) answered through an OpenAI-backed, a Gemini-backed and
an OpenAI-compatible model (translated), and through an Anthropic upstream (passed through as sent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.messages_support import ANTHROPIC, TRANSLATED, upstream_id
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

RECORDED = json.loads((Path(__file__).parent / "data" / "claude_code_request.json").read_text())


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs of an SSE body."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def request_of(model: str) -> tuple[dict[str, Any], dict[str, str]]:
    headers = {k: v for k, v in RECORDED["headers"].items() if k != "content-type"}
    return {**RECORDED["body"], "model": model}, headers


@pytest.mark.parametrize("model", TRANSLATED)
async def test_claude_code_request_translated(raw: httpx.AsyncClient, upstream: FakeUpstream, model: str) -> None:
    body, headers = request_of(model)
    call = {"name": "Glob", "arguments": {"pattern": "**/*.py"}}
    upstream.script(upstream_id(model), Reply(text="Let me look.", reasoning="I should glob.", tool_calls=[call]))
    response = await raw.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    seen = events(response.text)
    names = [name for name, _ in seen]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names and "error" not in names
    starts = [data["content_block"]["type"] for name, data in seen if name == "content_block_start"]
    assert starts[-1] == "tool_use" and "text" in starts
    assert names.count("content_block_start") == names.count("content_block_stop")
    tool = next(
        data["content_block"]
        for name, data in seen
        if name == "content_block_start" and data["content_block"]["type"] == "tool_use"
    )
    arguments = "".join(
        d["delta"]["partial_json"]
        for n, d in seen
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert tool["name"] == "Glob" and json.loads(arguments) == {"pattern": "**/*.py"}
    assert seen[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert seen[-2][1]["usage"]["output_tokens"] > 0
    sent = json.dumps(upstream.requests[-1].body)
    assert "You are Claude Code" in sent and "List the Python files" in sent
    assert all(t["name"] in sent for t in body["tools"])  # every tool reached the vendor in its own form
    ignored = response.headers["x-switchyard-ignored-params"]
    assert "cache_control" in ignored and "header:anthropic-beta" in ignored


async def test_claude_code_request_passed_through(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body, headers = request_of(ANTHROPIC)
    upstream.script(ANTHROPIC, Reply(text="Let me look.", reasoning="I should glob."))
    response = await raw.post("/v1/messages?beta=true", json=body, headers=headers)  # as Claude Code calls it
    assert response.status_code == 200, response.text
    recorded = upstream.requests[-1]
    assert recorded.body == body
    assert recorded.headers["anthropic-beta"] == headers["anthropic-beta"]
    kinds = [d["delta"]["type"] for n, d in events(response.text) if n == "content_block_delta"]
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds
    counted = await raw.post("/v1/messages/count_tokens?beta=true", json=body, headers=headers)
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
