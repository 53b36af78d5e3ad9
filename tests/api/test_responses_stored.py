"""Stored responses: ``previous_response_id`` continuing a conversation on another provider (OpenAI, then
Anthropic, then Gemini), ``GET``/``DELETE /v1/responses/{id}``, ``input_items``, ``store: false`` keeping
nothing, the retention, reasoning signatures carried across turns (stored, and sent back by the client as
``encrypted_content``), and one store shared by two gateways (the embedded file, and Redis)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from app.settings.settings import Settings
from tests.api.responses_fixtures import *  # noqa: F403  (the fixtures: responses_app, sdk, http)
from tests.api.responses_support import (
    ANTHROPIC,
    GEMINI,
    OPENAI,
    sent,
    sse_events,
)
from tests.fakes.anthropic_wire import SIGNATURE_MARK
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import (
    MASTER_HEADERS,
    REDIS,
    RedisServer,
    bearer,
    create_key,
    governed_client,
    governed_config,
)
from tests.support import fake_models, write_config


def texts(body: dict[str, Any]) -> str:
    return json.dumps(body)


async def test_previous_response_id_across_providers(sdk: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    upstream.script(OPENAI, Reply(text="Paris is in France."))
    upstream.script(ANTHROPIC, Reply(text="About 2.1 million people."))
    upstream.script(GEMINI, Reply(text="The Seine."))
    first = await sdk.responses.create(model=OPENAI, input="Where is Paris?")
    second = await sdk.responses.create(model=ANTHROPIC, input="How many live there?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "About 2.1 million people."
    messages = sent(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert "Paris is in France." in texts(messages[1]) and "How many live there?" in texts(messages[2])
    async with sdk.responses.stream(model=GEMINI, input="Its river?", previous_response_id=second.id) as stream:
        third = await stream.get_final_response()
    assert third.output_text == "The Seine."
    contents = sent(upstream)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert "About 2.1 million people." in texts(contents[3])
    # and back on OpenAI: its own /responses gets the whole conversation as input items, no unknown id
    upstream.script(OPENAI, Reply(text="Yes."))
    await sdk.responses.create(model=OPENAI, input="Sure?", previous_response_id=third.id)
    body = sent(upstream)
    assert "previous_response_id" not in body and len(body["input"]) == 7
    assert body["input"][-1] == {"type": "message", "role": "user", "content": "Sure?"}


async def test_get_delete_and_input_items(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(ANTHROPIC, Reply(text="hello back"))
    items = [
        {"role": "user", "content": "one"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]},
    ]
    created = (await http.post("/v1/responses", json={"model": ANTHROPIC, "input": items})).json()
    got = await http.get(f"/v1/responses/{created['id']}")
    assert got.status_code == 200 and got.json() == created
    listed = (await http.get(f"/v1/responses/{created['id']}/input_items")).json()
    assert listed["object"] == "list" and listed["has_more"] is False
    assert [i["content"] for i in listed["data"]] == [items[1]["content"], "one"]  # newest first
    assert all(i["id"] for i in listed["data"]) and listed["first_id"] == listed["data"][0]["id"]
    page = (await http.get(f"/v1/responses/{created['id']}/input_items?order=asc&limit=1")).json()
    assert [i["content"] for i in page["data"]] == ["one"] and page["has_more"] is True
    after = (await http.get(f"/v1/responses/{created['id']}/input_items?order=asc&after={page['last_id']}")).json()
    assert [i["content"] for i in after["data"]] == [items[1]["content"]]
    deleted = await http.delete(f"/v1/responses/{created['id']}")
    assert deleted.json() == {"id": created["id"], "object": "response", "deleted": True}
    for answer in (
        await http.get(f"/v1/responses/{created['id']}"),
        await http.delete(f"/v1/responses/{created['id']}"),
    ):
        assert answer.status_code == 404
        assert (
            answer.json()["error"]["type"] == "invalid_request_error"
            and created["id"] in answer.json()["error"]["message"]
        )


async def test_store_false_keeps_nothing(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(GEMINI, Reply(text="not kept"))
    created = (await http.post("/v1/responses", json={"model": GEMINI, "input": "x", "store": False})).json()
    assert created["store"] is False
    assert (await http.get(f"/v1/responses/{created['id']}")).status_code == 404
    answer = await http.post(
        "/v1/responses", json={"model": GEMINI, "input": "y", "previous_response_id": created["id"]}
    )
    assert answer.status_code == 404 and answer.json()["error"]["param"] == "previous_response_id"
    assert len(upstream.requests) == 1  # the continuation never reached a provider


async def test_unknown_ids_are_404(http: httpx.AsyncClient) -> None:
    for answer in (
        await http.get("/v1/responses/resp_nope"),
        await http.get("/v1/responses/resp_nope/input_items"),
        await http.delete("/v1/responses/resp_nope"),
    ):
        assert (
            answer.status_code == 404 and answer.json()["error"]["message"] == "Response with id 'resp_nope' not found."
        )


async def test_streamed_response_is_stored_before_completed(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(ANTHROPIC, Reply(text="streamed and kept"))
    body = {"model": ANTHROPIC, "input": "x", "stream": True, "metadata": {"run": "7"}}
    async with http.stream("POST", "/v1/responses", json=body) as answer:
        async for line in answer.aiter_lines():
            if line.startswith("data:") and '"response.completed"' in line:
                completed = json.loads(line[5:])["response"]
                # the client may continue at once: the response is already there
                stored = (await http.get(f"/v1/responses/{completed['id']}")).json()
                break
    assert stored["status"] == "completed" and stored["output"][0]["content"][0]["text"] == "streamed and kept"
    assert stored["metadata"] == {"run": "7"} and stored["id"] == completed["id"]


async def test_anthropic_reasoning_signature_carried_across_turns(
    sdk: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    """Stored: the next turn sends Anthropic its thinking block with the signature (the fake checks it)."""
    upstream.script(ANTHROPIC, Reply(text="4.", reasoning="2 and 2 make 4."), Reply(text="8."))
    reasoning: Any = {"effort": "low"}
    first = await sdk.responses.create(model=ANTHROPIC, input="2+2?", reasoning=reasoning)
    assert [i.type for i in first.output] == ["reasoning", "message"]
    assert first.output[0].encrypted_content is None  # not included: not shown
    second = await sdk.responses.create(
        model=ANTHROPIC, input="doubled?", previous_response_id=first.id, reasoning=reasoning
    )
    assert second.output_text == "8."
    (thinking,) = [b for b in sent(upstream)["messages"][1]["content"] if b["type"] == "thinking"]
    assert thinking["thinking"] == "2 and 2 make 4." and thinking["signature"]


async def test_encrypted_reasoning_sent_back_by_the_client(sdk: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    """Codex's way (``store: false``, ``include: ["reasoning.encrypted_content"]``): the reasoning item comes
    back in the next input and reaches Anthropic unchanged; OpenAI never gets Anthropic's envelope."""
    upstream.script(ANTHROPIC, Reply(text="4.", reasoning="2 and 2 make 4."), Reply(text="8."))
    options: Any = {"reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"], "store": False}
    first = await sdk.responses.create(model=ANTHROPIC, input="2+2?", **options)
    item = first.output[0]
    assert item.type == "reasoning" and item.encrypted_content and item.encrypted_content.startswith("swy1.")
    history: Any = [{"role": "user", "content": "2+2?"}, *[i.model_dump(exclude_none=True) for i in first.output]]
    await sdk.responses.create(model=ANTHROPIC, input=[*history, {"role": "user", "content": "doubled?"}], **options)
    (thinking,) = [b for b in sent(upstream)["messages"][1]["content"] if b["type"] == "thinking"]
    assert SIGNATURE_MARK.decode() in base64.b64decode(thinking["signature"]).decode()
    upstream.script(OPENAI, Reply(text="8."))
    await sdk.responses.create(model=OPENAI, input=[*history, {"role": "user", "content": "doubled?"}], **options)
    assert [i.get("type", "message") for i in sent(upstream)["input"]] == ["message", "message", "message"]


# --- retention and sharing --------------------------------------------------------------------------------


@asynccontextmanager
async def gateway(upstream: FakeUpstream, tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    tmp_path.mkdir(exist_ok=True)  # noqa: ASYNC240  (a test's own folder)
    path = write_config(tmp_path, {"models": fake_models(upstream.base_url), "orchestration": {"max_retries": 0}})
    app = create_app(Settings(config=path, **settings))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


async def test_retention(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> None:
    async with gateway(upstream, tmp_path, state_path=tmp_path / "s.db", responses_ttl_s=0.3) as client:
        upstream.script(GEMINI, Reply(text="short-lived"))
        created = (await client.post("/v1/responses", json={"model": GEMINI, "input": "x"})).json()
        assert (await client.get(f"/v1/responses/{created['id']}")).status_code == 200
        await asyncio.sleep(0.5)
        assert (await client.get(f"/v1/responses/{created['id']}")).status_code == 404


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_two_gateways_share_stored_responses(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str], kind: str
) -> None:
    """Two gateways (two workers, or two replicas with Redis): one continues what the other stored."""
    server: RedisServer | None = None
    if kind == "redis":
        if REDIS is None:
            pytest.skip("redis-server not installed")
        server = RedisServer().start()
    settings: dict[str, Any] = {"redis_url": server.url} if server else {"state_path": tmp_path / "shared.db"}
    try:
        async with (
            gateway(upstream, tmp_path / "a", **settings) as a,
            gateway(upstream, tmp_path / "b", **settings) as b,
        ):
            upstream.script(OPENAI, Reply(text="first on A"))
            upstream.script(ANTHROPIC, Reply(text="second on B"))
            first = (await a.post("/v1/responses", json={"model": OPENAI, "input": "hi"})).json()
            body = {"model": ANTHROPIC, "input": "again", "previous_response_id": first["id"]}
            second = await b.post("/v1/responses", json=body)
            assert second.status_code == 200 and "first on A" in texts(sent(upstream))
            assert (await a.get(f"/v1/responses/{second.json()['id']}")).json()["previous_response_id"] == first["id"]
    finally:
        if server is not None:
            server.stop()


async def test_stream_events_of_a_continuation(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(GEMINI, Reply(text="one"), Reply(text="two"))
    first = (await http.post("/v1/responses", json={"model": GEMINI, "input": "a"})).json()
    body = {"model": GEMINI, "input": "b", "stream": True, "previous_response_id": first["id"]}
    async with http.stream("POST", "/v1/responses", json=body) as answer:
        events = sse_events("".join([t async for t in answer.aiter_text()]))
    final = events[-1][1]
    assert final["type"] == "response.completed" and final["response"]["previous_response_id"] == first["id"]


async def test_virtual_keys_see_only_their_own(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> None:
    """With access control (the governance's store): a key's stored responses are its own; the master key
    sees them all; a request with a key is admitted and counted like any other."""
    config = governed_config(tmp_path, upstream.base_url)
    async with governed_client(config, tmp_path) as client:
        _, alice = await create_key(client, name="alice")
        _, bob = await create_key(client, name="bob")
        upstream.script(GEMINI, Reply(text="alice's"))
        body = {"model": GEMINI, "input": "mine"}
        created = await client.post("/v1/responses", json=body, headers=bearer(alice))
        assert created.status_code == 200, created.text
        path = f"/v1/responses/{created.json()['id']}"
        assert (await client.get(path, headers=bearer(alice))).status_code == 200
        assert (await client.get(path, headers=MASTER_HEADERS)).status_code == 200
        assert (await client.get(path, headers=bearer(bob))).status_code == 404
        assert (await client.delete(path, headers=bearer(bob))).status_code == 404
        continued = {**body, "previous_response_id": created.json()["id"]}
        assert (await client.post("/v1/responses", json=continued, headers=bearer(bob))).status_code == 404
        assert (await client.get(path)).status_code == 401
        assert (await client.delete(path, headers=bearer(alice))).status_code == 200
