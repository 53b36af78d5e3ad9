"""What real OpenAI clients send, through the official ``openai`` SDK against the gateway, to every kind of
provider behind it (played by the fake upstream): structured outputs, strict tools, parallel-call control,
image parts, sampling options, stored assistant histories, and the pass-through of OpenAI-protocol
upstreams (the client's body goes as sent; the answer comes back as sent)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.api.conftest import CHAT_MODELS, PASSTHROUGH, upstream_id
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

USER = [{"role": "user", "content": "What is the weather in Paris?"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


class Weather(BaseModel):
    city: str
    celsius: int


def sent_body(upstream: FakeUpstream) -> dict[str, Any]:
    body = upstream.requests[-1].body
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_structured_output_with_parse(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(text='{"city": "Paris", "celsius": 21}'))
    completion = await chat_client.chat.completions.parse(model=model, messages=USER, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Paris", celsius=21)
    assert "celsius" in json.dumps(sent_body(upstream))  # the schema reached the vendor in its own form


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_json_object_mode(chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text='{"ok": true}'))
    completion = await chat_client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Answer in JSON."}, *USER],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"ok": True}


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_strict_tools_without_parallel_calls(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    completion = await chat_client.chat.completions.create(
        model=model, messages=USER, tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=False
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    body = json.dumps(sent_body(upstream))
    assert "get_weather" in body
    if model in PASSTHROUGH:
        assert sent_body(upstream)["parallel_tool_calls"] is False
        assert sent_body(upstream)["tools"][0]["function"]["strict"] is True


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_streamed_tool_calls(chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    stream = await chat_client.chat.completions.create(model=model, messages=USER, tools=[WEATHER_TOOL], stream=True)
    arguments, names, finish = "", [], []
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                if call.function and call.function.name:
                    names.append(call.function.name)
                arguments += (call.function.arguments or "") if call.function else ""
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == ["tool_calls"]


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_data_url_image(chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    content: Any = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
    ]
    completion = await chat_client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content
    assert PNG in json.dumps(sent_body(upstream))  # the image reached the vendor


async def test_https_image_goes_to_an_openai_upstream_as_sent(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    content: Any = [
        {"type": "text", "text": "Describe it."},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    await chat_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    assert sent_body(upstream)["messages"][0]["content"] == content


async def test_sampling_options_logprobs_and_n_reach_an_openai_upstream(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    completion = await chat_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logprobs=True,
        top_logprobs=2,
        logit_bias={"50256": -100},
        n=2,
        store=True,
        prompt_cache_key="k",
        safety_identifier="s",
        service_tier="auto",
        metadata={"team": "a"},
        user="u",
        reasoning_effort="low",
        verbosity="low",
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].logprobs is not None and completion.choices[0].logprobs.content
    body = sent_body(upstream)
    assert (body["seed"], body["presence_penalty"], body["frequency_penalty"], body["n"]) == (7, 0.5, -0.5, 2)
    assert (body["logprobs"], body["top_logprobs"], body["logit_bias"]) == (True, 2, {"50256": -100})
    assert (body["store"], body["metadata"], body["user"], body["reasoning_effort"]) == (
        True,
        {"team": "a"},
        "u",
        "low",
    )


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gemini-2.0-flash", "compat-llama"])
async def test_seed_and_penalties_are_accepted(chat_client: openai.AsyncOpenAI, model: str) -> None:
    response = await chat_client.chat.completions.with_raw_response.create(
        model=model, messages=USER, seed=1, presence_penalty=0.2, frequency_penalty=0.2, max_tokens=20
    )
    assert response.status_code == 200


async def test_a_seed_the_target_cannot_honour_is_a_400_naming_it_and_the_provider(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await chat_client.chat.completions.create(model="claude-3-5-sonnet-20241022", messages=USER, seed=1)
    assert "seed" in caught.value.message and "anthropic" in caught.value.message
    assert caught.value.type == "invalid_request_error"
    assert upstream.requests == []


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_a_stored_history_goes_back_as_the_sdk_gives_it(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    """The assistant message of one answer, dumped by the SDK (``annotations``, ``refusal: null``,
    ``audio: null``, ``function_call: null``), is the history of the next request."""
    first = await chat_client.chat.completions.create(model=model, messages=USER)
    assistant = first.choices[0].message.model_dump()
    assert {"annotations", "refusal", "audio", "function_call"} <= set(assistant)
    history: Any = [*USER, assistant, {"role": "user", "content": "And tomorrow?"}]
    second = await chat_client.chat.completions.create(model=model, messages=history)
    assert second.choices[0].message.content == "echo: And tomorrow?"


async def test_history_with_annotations_refusal_and_reasoning_fields(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    assistant = {
        "role": "assistant",
        "content": "Sunny [1].",
        "refusal": None,
        "annotations": [{"type": "url_citation", "url_citation": {"url": "https://w", "title": "w"}}],
        "audio": None,
        "reasoning_content": "looked it up",
    }
    history: Any = [*USER, assistant, {"role": "user", "content": "Thanks"}]
    for model in ("claude-3-5-sonnet-20241022", "gemini-2.0-flash"):
        completion = await chat_client.chat.completions.create(model=model, messages=history)
        assert completion.choices[0].message.content == "echo: Thanks"


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_refusal_and_usage_details(chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(refusal="I can't help with that.", input_tokens=9, output_tokens=4))
    completion = await chat_client.chat.completions.create(model=model, messages=USER)
    message = completion.choices[0].message
    if model == "gemini-2.0-flash":  # Gemini refuses with a safety stop and no text
        assert completion.choices[0].finish_reason == "content_filter"
    else:
        assert message.refusal == "I can't help with that."
        assert message.content is None
    upstream.script(upstream_id(model), Reply(text="ok", input_tokens=50, cached_input_tokens=30))
    cached = await chat_client.chat.completions.create(model=model, messages=USER)
    assert cached.usage is not None and cached.usage.prompt_tokens_details is not None
    assert (cached.usage.prompt_tokens, cached.usage.prompt_tokens_details.cached_tokens) == (50, 30)


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"])
async def test_streamed_reasoning_comes_as_reasoning_content(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(text="It is 4.", reasoning="2 + 2 = 4"))
    # Gemini sends its thoughts only when asked to think; compatible servers send them anyway.
    effort: Any = {} if model in PASSTHROUGH else {"reasoning_effort": "low"}
    stream = await chat_client.chat.completions.create(model=model, messages=USER, stream=True, **effort)
    reasoning, text = "", ""
    async for chunk in stream:
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            text += choice.delta.content or ""
    assert reasoning == "2 + 2 = 4"
    assert text == "It is 4."


# --- pass-through, headers --------------------------------------------------------------------------------


async def test_openai_upstream_gets_the_body_as_sent_and_answers_as_it_sent(
    chat_raw: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    body = {"model": "compat-llama", "messages": USER, "made_up_option": {"x": [1]}, "prediction": None, "seed": 3}
    response = await chat_raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    sent = sent_body(upstream)
    assert sent == {**body, "model": "llama3"}  # only the model replaced
    answer = response.json()
    assert answer["model"] == "llama3" and "switchyard" not in answer  # the upstream's own answer
    assert response.headers["x-switchyard-provider"] == "openai_compatible"
    assert "x-switchyard-ignored-params" not in response.headers


async def test_openai_upstream_stream_is_forwarded_as_sent(chat_raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(text="one two three"))
    body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
    response = await chat_raw.post("/v1/chat/completions", json=body)
    assert response.text.endswith("data: [DONE]\n\n") and response.text.count("[DONE]") == 1
    events = [json.loads(b.removeprefix("data: ")) for b in response.text.split("\n\n") if b and "[DONE]" not in b]
    assert all(e.get("usage") is None for e in events)  # the usage the gateway asked for is not forwarded
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]) == "one two three"


async def test_a_translated_target_names_what_it_ignored_and_dropped(
    chat_raw: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    body = {"model": "claude-3-5-sonnet-20241022", "messages": USER, "made_up_option": 1, "store": True}
    response = await chat_raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-ignored-params"] == "made_up_option"
    assert "store" in response.headers["x-switchyard-dropped-params"].split(",")
    assert "made_up_option" not in json.dumps(sent_body(upstream))
    answer = response.json()
    assert answer["switchyard"]["provider"] == "anthropic"
    assert answer["choices"][0]["message"]["annotations"] == []


async def test_a_field_only_openai_honours_goes_to_an_openai_upstream(
    chat_client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    """``web_search_options`` reaches gpt-4o-mini as sent; its fallback (claude) could not honour it, so it
    is skipped from the plan rather than answering without web search."""
    upstream.script("gpt-4o-mini", Reply(status=503))
    with pytest.raises(openai.APIStatusError) as caught:
        await chat_client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, web_search_options={"search_context_size": "low"}
        )
    assert caught.value.status_code == 503
    assert [r.vendor for r in upstream.requests] == ["openai"]  # no fallback to claude
    assert sent_body(upstream)["web_search_options"] == {"search_context_size": "low"}


# --- the HTTP edges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"model": "gpt-4o-mini", "messages": [', "malformed JSON"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\udc00"}]}', "surrogate"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "NaN"),
        (b"[]", "JSON object"),
        (b"", "empty"),
    ],
)
async def test_bodies_that_are_not_json_objects_are_400(chat_raw: httpx.AsyncClient, raw: bytes, needle: str) -> None:
    response = await chat_raw.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and needle in error["message"]
    assert set(error) >= {"message", "type", "param", "code"}


async def test_a_body_without_content_type_is_json(chat_raw: httpx.AsyncClient) -> None:
    content = json.dumps({"model": "gpt-4o-mini", "messages": USER}).encode()
    response = await chat_raw.post("/v1/chat/completions", content=content)
    assert response.status_code == 200, response.text


async def test_validation_errors_have_openais_shape(chat_raw: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]}
    response = await chat_raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "messages.0.content",
        "invalid_type",
    )
    missing = (await chat_raw.post("/v1/chat/completions", json={"messages": USER})).json()["error"]
    assert (missing["param"], missing["code"]) == ("model", "missing_required_parameter")


async def test_every_error_has_a_code_and_param(chat_raw: httpx.AsyncClient) -> None:
    unknown = await chat_raw.post("/v1/chat/completions", json={"model": "nope", "messages": USER})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    route = await chat_raw.get("/v1/nothing-here")
    assert route.status_code == 404 and set(route.json()["error"]) >= {"message", "type", "param", "code"}


async def test_model_ids_with_slashes(upstream: FakeUpstream, tmp_path: Any, provider_keys: dict[str, str]) -> None:
    compat = {"provider": "openai_compatible", "model": "llama3", "api_base": f"{upstream.base_url}/v1"}
    models = {**fake_models(upstream.base_url), "meta/llama-3": compat}
    async with app_client(write_config(tmp_path, {"models": models})) as client:
        found = await client.get("/v1/models/meta/llama-3")
        assert found.status_code == 200
        entry = found.json()
        assert (entry["id"], entry["object"], entry["owned_by"]) == ("meta/llama-3", "model", "openai_compatible")
        assert isinstance(entry["created"], int)
        listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
        assert listed["meta/llama-3"]["created"] == entry["created"]
        missing = await client.get("/v1/models/meta/llama-4")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "model_not_found"
