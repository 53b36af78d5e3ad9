"""Each provider adapter, through its real SDK, against the fake upstream's real wire protocol."""

from __future__ import annotations

import socket

import pytest

from app.domain import ChatRequest, Message, Usage
from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConnectionError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamStreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from app.providers.registry import ModelEntry, ProviderRegistry
from app.settings.catalogue import parse_config
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, fake_models

MODELS = ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
REQUEST = ChatRequest(
    messages=(Message("system", "You are terse."), Message("user", "say hello world")),
    max_tokens=20,
    temperature=0.5,
    top_p=0.9,
    stop=("STOP",),
)


@pytest.fixture
async def registry(upstream: FakeUpstream):
    config = parse_config({"models": fake_models(upstream.base_url)})
    reg = ProviderRegistry.build(config, env=TEST_KEYS)
    yield reg
    await reg.aclose()


def _entry(registry: ProviderRegistry, name: str) -> ModelEntry:
    entry = registry.entry(name)
    assert entry.provider is not None, entry.unavailable_reason
    return entry


async def _collect(entry: ModelEntry, request: ChatRequest = REQUEST) -> tuple[str, list]:
    chunks = [chunk async for chunk in entry.provider.stream(request, entry.target)]
    return "".join(c.delta for c in chunks), chunks


@pytest.mark.parametrize("name", MODELS)
async def test_complete_reads_content_usage_and_cost(
    registry: ProviderRegistry, upstream: FakeUpstream, name: str
) -> None:
    entry = _entry(registry, name)
    upstream.script(entry.target.upstream_model, Reply(text="Hello, world!", input_tokens=11, output_tokens=4))
    completion = await entry.provider.complete(REQUEST, entry.target)
    assert completion.content == "Hello, world!"
    assert completion.usage == Usage(11, 4)
    assert completion.model == name and completion.provider == entry.target.provider
    assert completion.latency_ms > 0
    assert completion.cost == pytest.approx(entry.target.price.cost(11, 4))
    assert completion.finish_reason == "stop"


@pytest.mark.parametrize("name", MODELS)
async def test_parameters_and_system_reach_the_vendor_fields(
    registry: ProviderRegistry, upstream: FakeUpstream, name: str
) -> None:
    entry = _entry(registry, name)
    await entry.provider.complete(REQUEST, entry.target)
    body = upstream.requests[-1].body
    vendor = upstream.requests[-1].vendor
    if vendor == "anthropic":
        assert body["system"] == "You are terse."
        assert all(m["role"] != "system" for m in body["messages"])
        assert (body["max_tokens"], body["stop_sequences"]) == (20, ["STOP"])
        assert (body["temperature"], body["top_p"]) == (0.5, 0.9)
    elif vendor == "google":
        assert body["systemInstruction"]["parts"][0]["text"] == "You are terse."
        generation = body["generationConfig"]
        assert (generation["maxOutputTokens"], generation["stopSequences"]) == (20, ["STOP"])
        assert (generation["temperature"], generation["topP"]) == (0.5, 0.9)
    else:
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert body.get("max_completion_tokens", body.get("max_tokens")) == 20
        assert (body["temperature"], body["top_p"], body["stop"]) == (0.5, 0.9, ["STOP"])


async def test_keys_are_sent_only_as_the_vendors_auth_header(
    registry: ProviderRegistry, upstream: FakeUpstream
) -> None:
    for name in MODELS[:3]:
        entry = _entry(registry, name)
        await entry.provider.complete(REQUEST, entry.target)
    assert [r.api_key for r in upstream.requests] == [
        TEST_KEYS["OPENAI_API_KEY"],
        TEST_KEYS["ANTHROPIC_API_KEY"],
        TEST_KEYS["GEMINI_API_KEY"],
    ]


@pytest.mark.parametrize("name", MODELS)
async def test_stream_yields_text_and_ends_with_usage(
    registry: ProviderRegistry, upstream: FakeUpstream, name: str
) -> None:
    entry = _entry(registry, name)
    upstream.script(
        entry.target.upstream_model,
        Reply(text="one two three four", input_tokens=7, output_tokens=4, chunk_delay_s=0.02),
    )
    text, chunks = await _collect(entry)
    assert text == "one two three four"
    assert len([c for c in chunks if c.delta]) >= 2, "the answer must arrive in several chunks"
    last = chunks[-1]
    assert last.usage == Usage(7, 4)
    assert last.finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize(
    ("reply", "error", "status"),
    [
        (Reply(status=429, retry_after=3), UpstreamRateLimitError, 429),
        (Reply(status=401), UpstreamAuthError, 502),
        (Reply(status=400, error_message="messages: bad role"), UpstreamBadRequestError, 400),
        (Reply(status=500), UpstreamServerError, 502),
        (Reply(status=503), UpstreamUnavailableError, 503),
    ],
)
@pytest.mark.parametrize("name", MODELS)
async def test_vendor_errors_map_to_the_error_tree(
    registry: ProviderRegistry, upstream: FakeUpstream, name: str, reply: Reply, error: type, status: int
) -> None:
    entry = _entry(registry, name)
    upstream.script(entry.target.upstream_model, reply)
    with pytest.raises(error) as info:
        await entry.provider.complete(REQUEST, entry.target)
    assert info.value.status_code == status
    assert info.value.model == name
    if error is UpstreamRateLimitError:
        assert info.value.retry_after == 3
    if error is UpstreamBadRequestError:
        assert "bad role" in info.value.message
    for key in TEST_KEYS.values():
        assert key not in str(info.value.to_body())


async def test_anthropic_overloaded_529(registry: ProviderRegistry, upstream: FakeUpstream) -> None:
    entry = _entry(registry, "claude-3-5-sonnet-20241022")
    upstream.script(entry.target.upstream_model, Reply(status=529))
    with pytest.raises(UpstreamUnavailableError) as info:
        await entry.provider.complete(REQUEST, entry.target)
    assert info.value.upstream_status == 529


@pytest.mark.parametrize("name", MODELS)
async def test_slow_upstream_times_out_with_504(upstream: FakeUpstream, name: str) -> None:
    models = fake_models(upstream.base_url, **{name: {"timeout_s": 0.3}})
    registry = ProviderRegistry.build(parse_config({"models": models}), env=TEST_KEYS)
    try:
        entry = _entry(registry, name)
        upstream.script(entry.target.upstream_model, Reply(delay_s=5))
        with pytest.raises(UpstreamTimeoutError) as info:
            await entry.provider.complete(REQUEST, entry.target)
        assert info.value.status_code == 504
    finally:
        await registry.aclose()


@pytest.mark.parametrize("name", MODELS)
async def test_unreachable_upstream_is_a_connection_error(name: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    registry = ProviderRegistry.build(parse_config({"models": fake_models(dead)}), env=TEST_KEYS)
    try:
        entry = _entry(registry, name)
        with pytest.raises(UpstreamConnectionError) as info:
            await entry.provider.complete(REQUEST, entry.target)
        assert info.value.status_code == 502
    finally:
        await registry.aclose()


@pytest.mark.parametrize("name", MODELS)
async def test_stream_cut_midway_raises_instead_of_ending_quietly(
    registry: ProviderRegistry, upstream: FakeUpstream, name: str
) -> None:
    entry = _entry(registry, name)
    upstream.script(entry.target.upstream_model, Reply(text="a b c d e f g h", cut_after_chunks=2))
    received: list[str] = []
    with pytest.raises((UpstreamStreamError, UpstreamConnectionError, UpstreamServerError)):
        async for chunk in entry.provider.stream(REQUEST, entry.target):
            received.append(chunk.delta)
    assert "".join(received) != "a b c d e f g h"


def test_models_without_keys_are_unavailable_not_a_crash(upstream: FakeUpstream) -> None:
    registry = ProviderRegistry.build(parse_config({"models": fake_models(upstream.base_url)}), env={})
    assert registry.available_names() == ["compat-llama"]
    reason = registry.entry("gpt-4o-mini").unavailable_reason
    assert reason == "environment variable OPENAI_API_KEY is not set"


async def test_models_on_one_endpoint_share_one_client(registry: ProviderRegistry) -> None:
    assert registry.entry("gpt-4o-mini").provider is registry.entry("gpt-4o").provider
    assert registry.entry("gpt-4o-mini").provider is not registry.entry("compat-llama").provider
