"""Agent loops through the Messages front-end: a tool-use turn routed by alias stays on the model that
started it (translated or passed through, across gateway replicas, unless that model fails), and reasoning
made by another vendor never reaches an Anthropic upstream under a signature Anthropic would refuse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from app.main import create_app
from app.providers.anthropic_thinking import open_signature
from app.schemas.anthropic_ids import model_of_tool_id
from app.settings.settings import Settings
from tests.api.messages_support import ANTHROPIC, TRANSLATED, WEATHER, upstream_id
from tests.fakes.anthropic_wire import REDACTED_REASONING, check_signatures
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import fake_models, write_config

USER: Any = [{"role": "user", "content": "What is the weather in Rome?"}]
CALL = Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}


def route_model(response: Any) -> str:
    return str(response.headers["x-switchyard-route"].rsplit("model=", 1)[1])


def continued(first: Any, result: str = "sunny") -> list[Any]:
    """The history that answers every tool call of ``first`` (a ``Message``)."""
    uses = [b for b in first.content if b.type == "tool_use"]
    assert uses, first.content
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": result} for u in uses]
    return [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": results},
    ]


def fail_but_claude(upstream: FakeUpstream) -> None:
    for model in ("gpt-4o-mini", "gpt-4o", "gemini-2.0-flash", "compat-llama"):
        upstream.script(upstream_id(model), Reply(status=503))


@asynccontextmanager
async def replica(config: Path) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """One gateway replica (its own app and process state) and an SDK client for it."""
    app = create_app(Settings(config=config))
    async with app.router.lifespan_context(app):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
        async with anthropic.AsyncAnthropic(
            base_url="http://gateway", api_key="unused", http_client=http, max_retries=0
        ) as client:
            yield client


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return write_config(tmp_path, {"models": fake_models(upstream.base_url), "orchestration": {"max_retries": 0}})


# --- the loop keeps its model -----------------------------------------------------------------------------------


async def test_alias_loop_on_an_anthropic_upstream_stays_there(config: Path, upstream: FakeUpstream) -> None:
    """Under ``auto`` every other model fails, Claude (passed through) makes the calls; the continuation,
    on another replica, goes to Claude first (``auto`` would try gpt-4o-mini first), its body the client's
    as sent but for the model."""
    fail_but_claude(upstream)
    upstream.script(ANTHROPIC, CALL)
    async with replica(config) as first_replica:
        first = await first_replica.messages.with_raw_response.create(
            model="auto", max_tokens=50, messages=USER, tools=[WEATHER]
        )
    message = await first.parse()
    assert route_model(first) == ANTHROPIC and first.headers["x-switchyard-provider"] == "anthropic"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert model_of_tool_id(use.id) == ANTHROPIC and "_toolu_" in use.id  # Anthropic's id, tagged
    history = continued(message)
    upstream.script(ANTHROPIC, Reply(text="Sunny in Rome."))
    async with replica(config) as second_replica:  # no state shared with the first replica
        again = await second_replica.messages.with_raw_response.create(
            model="auto", max_tokens=50, messages=history, tools=[WEATHER]
        )
    assert route_model(again) == ANTHROPIC
    sent = upstream.requests[-1]
    assert sent.vendor == "anthropic"
    assert sent.body == {"model": ANTHROPIC, "max_tokens": 50, "messages": history, "tools": [WEATHER]}


async def test_streamed_passthrough_ids_are_tagged_under_an_alias(
    raw: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    fail_but_claude(upstream)
    upstream.script(ANTHROPIC, CALL)
    body = {"model": "auto", "max_tokens": 50, "messages": USER, "tools": [WEATHER], "stream": True}
    response = await raw.post("/v1/messages", json=body)
    assert response.status_code == 200 and response.headers["x-switchyard-provider"] == "anthropic"
    starts = [
        json.loads(line[6:])["content_block"]
        for line in response.text.splitlines()
        if line.startswith("data: ") and '"content_block_start"' in line
    ]
    (tool,) = [b for b in starts if b["type"] == "tool_use"]
    assert model_of_tool_id(tool["id"]) == ANTHROPIC and "_toolu_" in tool["id"]


async def test_a_named_anthropic_model_keeps_anthropics_ids(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(ANTHROPIC, CALL, CALL)
    body = {"model": ANTHROPIC, "max_tokens": 50, "messages": USER, "tools": [WEATHER]}
    answer = await raw.post("/v1/messages", json=body)
    (use,) = [b for b in answer.json()["content"] if b["type"] == "tool_use"]
    assert use["id"].startswith("toolu_") and model_of_tool_id(use["id"]) is None  # the bytes as Anthropic sent
    streamed = await raw.post("/v1/messages", json={**body, "stream": True})
    assert '"id":"toolu_' in streamed.text and "toolu_sy" not in streamed.text


@pytest.mark.parametrize(("alias", "failing", "maker"), [("cheapest", "gemini-2.0-flash", "gpt-4o-mini")])
async def test_alias_loop_on_a_translated_model_stays_there(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, alias: str, failing: str, maker: str
) -> None:
    """``cheapest`` plans Gemini first: it fails, gpt-4o-mini makes the calls, and keeps the loop."""
    upstream.script(failing, Reply(status=503))
    upstream.script(maker, CALL)
    first = await claude.messages.with_raw_response.create(model=alias, max_tokens=50, messages=USER, tools=[WEATHER])
    assert route_model(first) == maker
    history = continued(await first.parse())
    upstream.script(maker, Reply(text="Sunny."))
    again = await claude.messages.with_raw_response.create(
        model=alias, max_tokens=50, messages=history, tools=[WEATHER]
    )
    assert route_model(again) == maker and (await again.parse()).content[0].text == "Sunny."  # type: ignore[union-attr]


async def test_a_race_continuation_goes_to_its_model_alone(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream
) -> None:
    upstream.script("gemini-2.0-flash", CALL)
    first = await claude.messages.create(model="gemini-2.0-flash", max_tokens=50, messages=USER, tools=[WEATHER])
    upstream.reset()
    upstream.script("gemini-2.0-flash", Reply(text="Sunny."))
    again = await claude.messages.with_raw_response.create(
        model="race", max_tokens=50, messages=continued(first), tools=[WEATHER]
    )
    assert route_model(again) == "gemini-2.0-flash"
    assert len(upstream.requests) == 1  # no race: the model of the loop alone


async def test_a_named_model_wins_over_the_loop(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream) -> None:
    upstream.script("gemini-2.0-flash", CALL)
    first = await claude.messages.create(model="gemini-2.0-flash", max_tokens=50, messages=USER, tools=[WEATHER])
    upstream.script("gpt-4o", Reply(text="Sunny."))
    again = await claude.messages.with_raw_response.create(
        model="gpt-4o", max_tokens=50, messages=continued(first), tools=[WEATHER]
    )
    assert route_model(again) == "gpt-4o"


# --- reasoning of other vendors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", TRANSLATED)
async def test_foreign_thinking_is_gateway_signed(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str
) -> None:
    provider = {"gpt-4o-mini": "openai", "gemini-2.0-flash": "google", "compat-llama": "openai_compatible"}[model]
    upstream.script(upstream_id(model), Reply(text="Rome.", reasoning="Rome it is."))
    message = await claude.messages.create(model=model, max_tokens=2048, messages=USER, thinking=THINKING)
    block = message.content[0]
    assert block.type == "thinking" and block.thinking == "Rome it is."
    opened = open_signature(block.signature)
    assert opened is not None and opened.provider == provider and not opened.redacted
    upstream.script(upstream_id(model), Reply(text="Rome.", reasoning="Streamed thoughts."))
    async with claude.messages.stream(model=model, max_tokens=2048, messages=USER, thinking=THINKING) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "thinking"
    streamed = open_signature(final.content[0].signature)
    assert streamed is not None and streamed.provider == provider


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gpt-4o-mini"])
async def test_foreign_thinking_is_taken_out_for_anthropic(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str
) -> None:
    """A tool-use turn of another vendor, with its reasoning, continued on an Anthropic upstream (the fake
    refuses signatures it did not make, as Anthropic does): the foreign block is gone, and thinking is off
    since the tool-use turn has no thinking of Anthropic's; everything else is the client's body."""
    upstream.script(upstream_id(model), Reply(reasoning="Weather needs a tool.", tool_calls=CALL.tool_calls))
    first = await claude.messages.create(
        model=model, max_tokens=2048, messages=USER, tools=[WEATHER], thinking=THINKING
    )
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    history = continued(first)
    with pytest.raises(ValueError, match="Invalid `signature`"):
        check_signatures(history)  # what the client holds would be refused as it is
    upstream.script(ANTHROPIC, Reply(text="Sunny.", reasoning="Done."))
    again = await claude.messages.create(
        model=ANTHROPIC, max_tokens=2048, messages=history, tools=[WEATHER], thinking=THINKING
    )
    assert again.content[-1].text == "Sunny."  # type: ignore[union-attr]
    sent = upstream.requests[-1].body
    assert isinstance(sent, dict) and "thinking" not in sent
    stripped = [history[0], {**history[1], "content": history[1]["content"][1:]}, history[2]]
    assert sent == {"model": ANTHROPIC, "max_tokens": 2048, "messages": stripped, "tools": [WEATHER]}
    # and back to the vendor that made it: accepted, the vendor gets its call and the result
    upstream.script(upstream_id(model), Reply(text="Sunny."))
    back = await claude.messages.create(
        model=model, max_tokens=2048, messages=history, tools=[WEATHER], thinking=THINKING
    )
    assert back.content[-1].text == "Sunny."  # type: ignore[union-attr]
    assert "sunny" in json.dumps(upstream.requests[-1].body)


async def test_anthropic_thinking_goes_back_untouched(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream) -> None:
    """Anthropic's own thinking (signed, and redacted) goes back to Anthropic as it came; a translated
    vendor gets the conversation without it (no Anthropic signature leaks into its request)."""
    upstream.script(ANTHROPIC, Reply(reasoning="Tool time.", tool_calls=CALL.tool_calls))
    first = await claude.messages.create(
        model=ANTHROPIC, max_tokens=2048, messages=USER, tools=[WEATHER], thinking=THINKING
    )
    signature = first.content[0].signature  # type: ignore[union-attr]
    assert open_signature(signature) is None
    history = continued(first)
    upstream.script(ANTHROPIC, Reply(text="Sunny."))
    await claude.messages.create(model=ANTHROPIC, max_tokens=2048, messages=history, tools=[WEATHER], thinking=THINKING)
    sent = upstream.requests[-1].body
    assert isinstance(sent, dict) and sent["messages"] == history and sent["thinking"] == THINKING
    upstream.script("gemini-2.0-flash", Reply(text="Sunny."))
    await claude.messages.create(
        model="gemini-2.0-flash", max_tokens=2048, messages=history, tools=[WEATHER], thinking=THINKING
    )
    assert signature not in json.dumps(upstream.requests[-1].body)


async def test_redacted_thinking_round_trip(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream) -> None:
    upstream.script(ANTHROPIC, Reply(text="Rome.", reasoning=REDACTED_REASONING))
    message = await claude.messages.create(model=ANTHROPIC, max_tokens=2048, messages=USER, thinking=THINKING)
    assert [b.type for b in message.content] == ["redacted_thinking", "text"]
    upstream.script(ANTHROPIC, Reply(text="Rome.", reasoning=REDACTED_REASONING))
    async with claude.messages.stream(model=ANTHROPIC, max_tokens=2048, messages=USER, thinking=THINKING) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "redacted_thinking" and final.content[0].data
    history: Any = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    upstream.script(ANTHROPIC, Reply(text="Rain."))
    again = await claude.messages.create(model=ANTHROPIC, max_tokens=2048, messages=history, thinking=THINKING)
    assert again.content[0].text == "Rain."  # type: ignore[union-attr]
    assert upstream.requests[-1].body["messages"] == history  # type: ignore[index]
