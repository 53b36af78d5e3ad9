"""``POST /v1/chat/completions`` through the official ``openai`` client (AsyncOpenAI over ASGI), with every
provider behind the gateway played by the fake upstream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.api.conftest import CHAT_MODELS, PASSTHROUGH, upstream_id
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

MODELS = CHAT_MODELS
USER = [{"role": "user", "content": "hello there"}]


def answered_as(model: str) -> str:
    """The ``model`` an answer names: the catalogue name, or the upstream's own for a pass-through (its
    answer comes back as the upstream sent it)."""
    return upstream_id(model) if model in PASSTHROUGH else model


@pytest.fixture
def client(chat_client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    return chat_client


@pytest.fixture
def raw(chat_raw: httpx.AsyncClient) -> httpx.AsyncClient:
    return chat_raw


@pytest.mark.parametrize("model", MODELS)
async def test_non_streamed_answer_has_the_openai_shape(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(text="Hi from upstream", input_tokens=7, output_tokens=3))
    response = await client.chat.completions.with_raw_response.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]},
        ],
        max_completion_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        n=1,
        user="user-1",
    )
    completion = response.parse()
    assert completion.object == "chat.completion"
    assert completion.model == answered_as(model)
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Hi from upstream"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
    assert completion.usage.total_tokens == 10
    assert response.headers["x-switchyard-route"] == f"specific; model={model}"
    sent = upstream.requests[-1]
    assert sent.model == upstream_id(model)
    assert "hello " in json.dumps(sent.body) and "there" in json.dumps(sent.body)


@pytest.mark.parametrize("model", MODELS)
async def test_streamed_answer_with_usage_in_the_last_chunk(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    # the pieces 20 ms apart, as a model writes them: each is forwarded as it comes (events that arrive in
    # one read are forwarded together, app.providers.coalesce)
    reply = Reply(text="one two three four", input_tokens=5, output_tokens=4, chunk_delay_s=0.02)
    upstream.script(upstream_id(model), reply)
    stream = await client.chat.completions.create(
        model=model, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4  # not one buffered blob
    assert all(c.model == answered_as(model) for c in chunks)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 4)
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_raw_stream_ends_with_done_after_a_complete_answer(raw: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
    response = await raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.text.endswith("data: [DONE]\n\n")
    assert response.text.count("[DONE]") == 1


async def test_upstream_cut_mid_stream_raises_api_error_not_a_silent_end(
    client: openai.AsyncOpenAI, raw: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-4o-mini", Reply(text="alpha beta gamma delta epsilon", cut_after_chunks=2))
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "alpha beta "  # what was sent stays sent; no fallback after content
    assert caught.value.type == "upstream_stream_error"
    assert caught.value.code == "upstream_stream_error"
    assert "openai" in caught.value.message
    # On the wire: an error event, and no [DONE] terminator.
    upstream.script("gpt-4o-mini", Reply(text="alpha beta gamma delta epsilon", cut_after_chunks=2))
    response = await raw.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": USER, "stream": True})
    events = [line for line in response.text.split("\n\n") if line]
    assert "[DONE]" not in response.text
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["type"] == "upstream_stream_error"
    assert last["error"]["model"] == "gpt-4o-mini"
    assert len(upstream.requests) == 2  # one call per request: never a fallback once content was sent


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"])
async def test_in_stream_vendor_error_after_content_is_an_api_error(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(text="alpha beta gamma delta", error_after_chunks=2))
    stream = await client.chat.completions.create(model=model, messages=USER, stream=True)
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert caught.value.type == "upstream_stream_error"


async def test_failure_before_the_first_chunk_falls_back_transparently(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-4o-mini", Reply(status=503))
    upstream.script("claude-3-5-sonnet-20241022", Reply(text="from the fallback"))
    response = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER, stream=True)
    assert response.headers["x-switchyard-route"] == "specific; model=claude-3-5-sonnet-20241022"
    chunks = [chunk async for chunk in response.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from the fallback"
    assert {c.model for c in chunks} == {"claude-3-5-sonnet-20241022"}
    assert [r.vendor for r in upstream.requests] == ["openai", "anthropic"]


async def test_cut_before_any_content_falls_back(client: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(text="never sent", cut_after_chunks=0))
    upstream.script("claude-3-5-sonnet-20241022", Reply(text="second try"))
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "second try"


async def test_every_model_failing_before_streaming_is_an_http_error(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-4o-mini", Reply(status=500))
    upstream.script("claude-3-5-sonnet-20241022", Reply(status=529))
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "all_models_failed"
    assert [f["model"] for f in body["failures"]] == ["gpt-4o-mini", "claude-3-5-sonnet-20241022"]


async def test_bad_request_upstream_is_not_fallen_back(client: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(status=400, error_message="bad thing"))
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("model", "extra", "param", "code"),
    [
        ("gpt-4o-mini", {"audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_parameter"),
        ("gpt-4o-mini", {"modalities": ["text", "audio"]}, "modalities.1", "unsupported_value"),
        ("claude-3-5-sonnet-20241022", {"web_search_options": {}}, "web_search_options", "unsupported_parameter"),
        ("gemini-2.0-flash", {"functions": [{"name": "f", "parameters": {}}]}, "functions", "unsupported_parameter"),
        ("gpt-4o-mini", {"top_logprobs": 3}, "top_logprobs", "invalid_value"),
        ("gpt-4o-mini", {"n": 500}, "n", "integer_above_max_value"),
    ],
)
async def test_what_cannot_be_honoured_is_a_400_naming_it(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str, extra: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=model, messages=USER, extra_body=extra)
    assert caught.value.status_code == 400
    assert (caught.value.param, caught.value.code, caught.value.type) == (param, code, "invalid_request_error")
    assert param.split(".")[0] in caught.value.message
    assert upstream.requests == []


async def test_noop_values_of_unsupported_parameters_are_accepted(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        n=1,
        logprobs=False,
        presence_penalty=0,
        frequency_penalty=0,
        parallel_tool_calls=True,
        response_format={"type": "text"},
    )
    assert completion.choices[0].message.content == "echo: hello there"


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}],
            "input_audio",
        ),
        ([{"role": "function", "name": "f", "content": "x"}], "function"),
        ([{"role": "tool", "content": "result"}], "tool_call_id"),
    ],
)
async def test_unsupported_message_shapes_get_a_400(
    client: openai.AsyncOpenAI, messages: list[dict[str, Any]], named: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    assert named in caught.value.message
    assert caught.value.param is not None and caught.value.param.startswith("messages.0")


async def test_invalid_values_are_4xx_and_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=9)
    assert (bad.value.param, bad.value.code) == ("temperature", "decimal_above_max_value")
    with pytest.raises(openai.BadRequestError) as empty:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert (empty.value.param, empty.value.code) == ("messages", "empty_array")
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-9-ultra", messages=USER)
    assert "routing alias" in caught.value.message
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")


async def test_routing_aliases(client: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    auto = await client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert auto.headers["x-switchyard-route"].startswith("complexity; ")
    task = await client.chat.completions.with_raw_response.create(
        model="task", messages=[{"role": "user", "content": "Translate 'good morning' into French"}]
    )
    assert task.headers["x-switchyard-route"].startswith("task; ")
    cheapest = await client.chat.completions.with_raw_response.create(model="cheapest", messages=USER)
    assert cheapest.headers["x-switchyard-route"].startswith("cost; ")
    race = await client.chat.completions.with_raw_response.create(model="race", messages=USER)
    assert race.headers["x-switchyard-route"].startswith("parallel; ")
    assert race.parse().choices[0].message.content == "echo: hello there"


async def test_race_alias_streams_from_the_first_model_to_answer(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    slow = Reply(text="slow answer", delay_s=3.0)
    for name in MODELS:
        upstream.script(upstream_id(name), slow)
    upstream.script("gpt-4o", Reply(text="fast answer"))
    stream = await client.chat.completions.create(model="race", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fast answer"
    assert {c.model for c in chunks} == {"gpt-4o"}
    upstream.wait_for_disconnects(len(MODELS), timeout=10)  # the losers were cancelled, not left running


async def test_models_list_parses_with_the_openai_client(client: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    page = await client.models.list()
    ids = [m.id for m in page.data]
    assert set(MODELS) <= set(ids)
    assert all(m.object == "model" for m in page.data)
    assert all(isinstance(m.created, int) and m.owned_by for m in page.data)
    mini = await client.models.retrieve("gpt-4o-mini")
    assert (mini.id, mini.owned_by, mini.object) == ("gpt-4o-mini", "openai", "model")
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    body = (await raw.get("/v1/models")).json()
    first = body["models"][0]  # the /v1/complete users' fields stay
    assert {"id", "provider", "cost_per_1k_input", "cost_per_1k_output"} <= set(first)


async def test_complete_stream_events(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(text="a b c", input_tokens=4, output_tokens=3, chunk_delay_s=0.02))
    body = {"prompt": "hi", "routing": "specific", "model": "gpt-4o-mini", "stream": True}
    response = await raw.post("/v1/complete", json=body)
    assert response.status_code == 200
    events = _events(response.text)
    assert [name for name, _ in events] == ["start", "delta", "delta", "delta", "done"]
    assert "".join(data["content"] for name, data in events if name == "delta") == "a b c"
    start, done = events[0][1], events[-1][1]
    assert (start["model"], start["provider"]) == ("gpt-4o-mini", "openai")
    assert done["tokens"] == {"input": 4, "output": 3}
    assert done["finish_reason"] == "stop"
    assert done["cost"] is not None and done["ttft_ms"] <= done["latency_ms"]


async def test_complete_stream_cut_ends_with_an_error_event(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(text="a b c d", cut_after_chunks=1))
    body = {"prompt": "hi", "routing": "specific", "model": "gpt-4o-mini", "stream": True}
    events = _events((await raw.post("/v1/complete", json=body)).text)
    assert [name for name, _ in events] == ["start", "delta", "error"]
    assert events[-1][1]["error"]["type"] == "upstream_stream_error"


async def test_complete_stream_failing_before_content_is_a_json_error(
    raw: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    upstream.script("claude-3-5-sonnet-20241022", Reply(status=429, retry_after=3))
    body = {"prompt": "hi", "routing": "specific", "model": "claude-3-5-sonnet-20241022", "stream": True}
    response = await raw.post("/v1/complete", json=body)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["type"] == "rate_limited"
    bad = await raw.post("/v1/complete", json={**body, "strategy": "consensus", "routing": "parallel"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


async def test_passthrough_keeps_the_clients_bytes(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    """To an OpenAI-protocol upstream the body goes as the client wrote it (spacing, key order, number
    spelling, escapes, unknown fields), but for ``model``; a stream also gets ``stream_options`` it needs."""
    upstream.script(upstream_id("gpt-4o"), Reply(text="ok"), Reply(text="ok"))
    body = (
        b'{"messages":[{"role":"user","content":"caf\\u00e9  \\ud83d\\ude00"}],  "model" : "gpt-4o",'
        b' "temperature": 5E-1, "x_vendor": {"model": "keep"}, "seed": 12345678901}'
    )
    answer = await raw.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    sent = upstream.requests[-1].raw
    assert sent == body.replace(b'"model" : "gpt-4o"', b'"model" : "' + upstream_id("gpt-4o").encode() + b'"')
    streamed = body[:-1] + b', "stream": true}'
    answer = await raw.post("/v1/chat/completions", content=streamed, headers={"content-type": "application/json"})
    assert answer.status_code == 200
    sent = upstream.requests[-1].raw
    assert sent.startswith(body[:-1].replace(b'"gpt-4o"', b'"' + upstream_id("gpt-4o").encode() + b'"'))
    assert json.loads(sent)["stream_options"] == {"include_usage": True}
