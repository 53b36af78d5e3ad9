"""Codex's requests answered streamed through an Anthropic-backed and a Gemini-backed model, then continued as
Codex does (the output items and the tool's output appended to the input, nothing stored):

- ``data/codex_responses_request.json``, the shape of earlier Codex versions: ``instructions``, six function
  tools, an earlier turn's reasoning with OpenAI's encrypted content, a shell call and its output, reasoning
  effort and summary, ``include: ["reasoning.encrypted_content"]``, ``store: false``, ``stream: true``;
- ``data/codex_cli_0.169_request.json``, recorded from the Codex CLI 0.169 (``codex exec``, a provider with
  ``wire_api = "responses"`` and ``web_search = "disabled"``) in its second request of a turn: developer
  messages instead of ``instructions``, a ``namespace`` tool (``multi_agent_v1``) beside seven function
  tools, ``client_metadata``, the reasoning, ``exec_command`` call and output of the turn so far."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.responses_fixtures import *  # noqa: F403  (the fixtures: responses_app, sdk, http)
from tests.api.responses_support import (
    ANTHROPIC,
    DATA,
    GEMINI,
    sent,
    sse_events,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

CODEX = json.loads((DATA / "codex_responses_request.json").read_text())
CODEX_CLI = json.loads((DATA / "codex_cli_0.169_request.json").read_text())
PATCH_CALL = {"name": "apply_patch", "arguments": {"input": "*** Begin Patch\n*** End Patch"}}


async def stream(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with http.stream("POST", "/v1/responses", json=body) as answer:
        assert answer.status_code == 200, await answer.aread()
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = sse_events("".join([t async for t in answer.aiter_text()]))
    for name, data in events:
        assert name == data["type"]  # every event is named, as Codex reads them
    return [data for _, data in events]


def function_names(body: dict[str, Any]) -> list[str]:
    """The functions a Responses body offers, those of namespace tools included."""
    names = []
    for tool in body["tools"]:
        names += [t["name"] for t in tool["tools"]] if tool["type"] == "namespace" else [tool["name"]]
    return names


SPAWN_CALL = {"name": "spawn_agent", "arguments": {"message": "run the tests"}}
RECORDINGS = {"codex": (CODEX, PATCH_CALL, None), "codex-cli-0.169": (CODEX_CLI, SPAWN_CALL, "multi_agent_v1")}


@pytest.mark.parametrize("model", [ANTHROPIC, GEMINI])
@pytest.mark.parametrize("recording", sorted(RECORDINGS))
async def test_codex_turn(http: httpx.AsyncClient, upstream: FakeUpstream, model: str, recording: str) -> None:
    codex, tool_call, namespace = RECORDINGS[recording]
    upstream.script(model, Reply(reasoning="The add function is wrong.", tool_calls=[tool_call]), Reply(text="Fixed."))
    events = await stream(http, {**codex, "model": model})
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    final = events[-1]["response"]
    assert final["store"] is False and final["instructions"] == codex.get("instructions")
    types = [item["type"] for item in final["output"]]
    assert types[-1] == "function_call" and types.count("function_call") == 1
    call = final["output"][-1]
    assert call["name"] == tool_call["name"] and json.loads(call["arguments"]) == tool_call["arguments"]
    assert call.get("namespace") == namespace  # a namespace tool's function is called in its namespace
    added = [
        e["item"] for e in events if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    ]
    assert added[0].get("namespace") == namespace
    if model == ANTHROPIC:  # Anthropic's thinking, signed: kept for the next turn as encrypted content
        (reasoning,) = [i for i in final["output"] if i["type"] == "reasoning"]
        assert reasoning["encrypted_content"].startswith("swy1.")
        assert "response.reasoning_summary_text.delta" in kinds
    body = sent(upstream)
    if model == ANTHROPIC:
        assert "Codex" in json.dumps(body["system"])
        assert [t["name"] for t in body["tools"]] == function_names(codex)
        parallel = codex["parallel_tool_calls"] is not False
        assert bool(body["tool_choice"].get("disable_parallel_tool_use")) is not parallel
        assert "thinking" not in body  # the recorded tool turn was OpenAI's: unsigned here, Anthropic refuses it
        kinds_sent = [b["type"] for m in body["messages"] for b in m["content"] if isinstance(m["content"], list)]
        assert "tool_use" in kinds_sent and "tool_result" in kinds_sent
    else:
        names = [f["name"] for t in body["tools"] for f in t["functionDeclarations"]]
        assert names == function_names(codex)
        assert "Codex" in json.dumps(body["systemInstruction"])
    assert upstream.requests[-1].stream is True
    # Codex's next request: everything so far plus the tool's output, store still false
    follow = [
        *codex["input"],
        *final["output"],
        {"type": "function_call_output", "call_id": call["call_id"], "output": "Done!"},
    ]
    events = await stream(http, {**codex, "model": model, "input": follow})
    assert events[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Fixed."
    again = sent(upstream)
    thinks = bool((codex.get("reasoning") or {}).get("effort"))
    if model == ANTHROPIC and thinks:  # the signed thinking went back with the tool call (the fake checks it)
        assistant = [m for m in again["messages"] if m["role"] == "assistant"][-1]
        assert [b["type"] for b in assistant["content"]][:1] == ["thinking"] and "thinking" in again
    elif model == GEMINI:
        model_turn = [c for c in again["contents"] if c["role"] == "model"][-1]
        # Gemini's thought signature of the call travelled in its call_id, and went back with the call
        assert any("functionCall" in p and p.get("thoughtSignature") for p in model_turn["parts"])
    assert "Done!" in json.dumps(again)


async def test_codex_request_to_a_model_without_tools_fails_cleanly(http: httpx.AsyncClient) -> None:
    answer = await http.post("/v1/responses", json={**CODEX, "model": "gpt-nope"})
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "model_not_found"
