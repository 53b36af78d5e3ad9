"""Streaming end to end through a real uvicorn server on 127.0.0.1: the sync ``openai`` client, chunks
forwarded as they arrive, and a client that goes away cancelling the upstream call at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn

from app.main import create_app
from app.settings.settings import Settings
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import fake_models, write_config

MODELS = ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
UPSTREAM_ID = {"compat-llama": "llama3"}
USER = [{"role": "user", "content": "hello there"}]


class GatewayServer:
    """The gateway app served by uvicorn in a daemon thread (lifespan on) on a free loopback port."""

    def __init__(self, config: Path) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.sock, self.port = sock, sock.getsockname()[1]
        app = create_app(Settings(config=config))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http="h11"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Iterator[GatewayServer]:
    overrides = {"gpt-4o-mini": {"fallbacks": ["claude-3-5-sonnet-20241022"]}, "gpt-4o": {"timeout_s": 60}}
    models = fake_models(upstream.base_url, **overrides)
    path = write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})
    with GatewayServer(path) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused", max_retries=0, timeout=30) as c:
        yield c


@pytest.mark.parametrize("model", MODELS)
def test_sync_client_streamed_and_not(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    name = UPSTREAM_ID.get(model, model)
    upstream.script(name, Reply(text="plain answer", input_tokens=3, output_tokens=2))
    completion = client.chat.completions.create(model=model, messages=USER)
    assert completion.choices[0].message.content == "plain answer"
    assert completion.usage is not None and completion.usage.total_tokens == 5
    upstream.script(name, Reply(text="streamed answer here", input_tokens=3, output_tokens=3))
    stream = client.chat.completions.create(
        model=model, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed answer here"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


@pytest.mark.parametrize("model", MODELS)
def test_sync_client_sees_a_cut_stream_as_an_error(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(UPSTREAM_ID.get(model, model), Reply(text="w1 w2 w3 w4 w5 w6", cut_after_chunks=3))
    stream = client.chat.completions.create(model=model, messages=USER, stream=True)
    text = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            text.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(text) == "w1 w2 w3 "
    assert caught.value.type == "upstream_stream_error"


def test_chunks_are_forwarded_as_they_arrive(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    # 8 words, 0.4 s apart: the whole answer takes about 2.8 s upstream.
    upstream.script("gpt-4o", Reply(text="a b c d e f g h", chunk_delay_s=0.4))
    started = time.monotonic()
    stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    arrivals: list[float] = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 8
    # Not buffered: the first word arrived long before the last was produced (generous margins).
    assert arrivals[-1] - arrivals[0] > 1.5
    assert arrivals[0] < arrivals[-1] / 2


def test_client_disconnect_mid_stream_cancels_the_upstream(gateway: GatewayServer, upstream: FakeUpstream) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    upstream.script("gpt-4o", Reply(text=words, chunk_delay_s=0.2))  # 20 s if read to the end
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    with (
        httpx.Client(base_url=gateway.base_url, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        seen = 0
        for line in lines:
            if '"content":"w' in line:
                seen += 1
            if seen == 2:
                break
    started = time.monotonic()
    assert upstream.wait_for_disconnects(1, timeout=10) == 1
    assert time.monotonic() - started < 10  # far less than the 19 s left of the answer
    upstream.wait_idle(timeout=10)


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-20241022", "gemini-2.0-flash"])
def test_client_disconnect_mid_stream_cancels_other_vendors(
    gateway: GatewayServer, upstream: FakeUpstream, model: str
) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    upstream.script(model, Reply(text=words, chunk_delay_s=0.2))
    body = {"model": model, "messages": USER, "stream": True}
    with (
        httpx.Client(base_url=gateway.base_url, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if '"content":"w' in line:
                break
    assert upstream.wait_for_disconnects(1, timeout=10) == 1


def test_client_disconnect_before_the_first_token_cancels_the_upstream(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    # The upstream thinks for 30 s and the model's own deadline is 60 s: only the disconnect can stop it.
    upstream.script("gpt-4o", Reply(text="late", delay_s=30))
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=gateway.base_url, timeout=0.5) as http:
        http.post("/v1/chat/completions", json=body)  # gives up after 0.5 s: the connection is closed
    assert upstream.wait_for_disconnects(1, timeout=10) == 1


def test_complete_stream_disconnect_cancels_the_upstream(gateway: GatewayServer, upstream: FakeUpstream) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    upstream.script("gpt-4o", Reply(text=words, chunk_delay_s=0.2))
    body = {"prompt": "hi", "routing": "specific", "model": "gpt-4o", "stream": True}
    with (
        httpx.Client(base_url=gateway.base_url, timeout=30) as http,
        http.stream("POST", "/v1/complete", json=body) as response,
    ):
        for line in response.iter_lines():
            if line == "event: delta":
                break
    assert upstream.wait_for_disconnects(1, timeout=10) == 1
