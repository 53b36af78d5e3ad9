"""The OpenAI stream encoders of ``/v1/chat/completions`` over a scripted stream session: gateway-encoded
chunks, the byte-faithful pass-through, and the error event that ends a broken stream (never ``[DONE]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from app.api.routes.chat import chat_events, passthrough_events, switchyard_headers
from app.domain import StreamChunk, Usage
from app.errors import UpstreamStreamError


@dataclass
class ScriptedSession:
    """What the encoders read of a ``StreamSession``."""

    script: list[StreamChunk]
    fail_after: int | None = None
    model: str = "gpt-4o-mini"
    provider: str = "openai"
    finished: bool = False
    usage: Usage | None = None
    cost: float | None = 0.0
    passthrough: bool = False
    closed: list[bool] = field(default_factory=list)

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        try:
            for i, chunk in enumerate(self.script):
                if self.fail_after is not None and i == self.fail_after:
                    raise UpstreamStreamError("the openai stream broke", provider="openai", model=self.model)
                if chunk.finish_reason is not None:
                    self.finished, self.usage = True, chunk.usage
                yield chunk
        finally:
            self.closed.append(True)


async def collect(events: AsyncIterator[bytes]) -> bytes:
    return b"".join([event async for event in events])


def data_lines(wire: bytes) -> list[str]:
    return [block.removeprefix(b"data: ").decode() for block in wire.split(b"\n\n") if block]


SCRIPT = [StreamChunk(delta="Hi"), StreamChunk(delta=" there"), StreamChunk(finish_reason="stop", usage=Usage(3, 2))]


@pytest.mark.parametrize("include_usage", [False, True])
async def test_encoded_stream_ends_with_done(include_usage: bool) -> None:
    session = ScriptedSession(list(SCRIPT))
    wire = await collect(chat_events(session, include_usage=include_usage))  # type: ignore[arg-type]
    lines = data_lines(wire)
    assert lines[-1] == "[DONE]" and wire.count(b"[DONE]") == 1
    chunks = [ChatCompletionChunk.model_validate_json(line) for line in lines[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens == 5
    else:
        assert all(c.usage is None for c in chunks)


async def test_a_broken_encoded_stream_ends_with_an_error_event() -> None:
    session = ScriptedSession(list(SCRIPT), fail_after=1)
    lines = data_lines(await collect(chat_events(session, include_usage=False)))  # type: ignore[arg-type]
    assert "[DONE]" not in lines
    error = orjson.loads(lines[-1])["error"]
    assert (error["type"], error["code"], error["param"]) == ("upstream_stream_error",) * 2 + (None,)
    assert error["model"] == "gpt-4o-mini"
    assert session.closed == [True]


async def test_a_stream_that_stops_without_finishing_is_an_error_not_done() -> None:
    session = ScriptedSession([StreamChunk(delta="Hi")])
    lines = data_lines(await collect(chat_events(session, include_usage=False)))  # type: ignore[arg-type]
    assert "[DONE]" not in lines
    assert orjson.loads(lines[-1])["error"]["type"] == "upstream_stream_error"


HEAD = b'data: {"id":"chatcmpl-up","object":"chat.completion.chunk",'
RAW = [
    HEAD + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
    HEAD + b'"choices":[{"index":0,"delta":{"content":"Hi"}}],"x_vendor":1}\n\n',
    HEAD + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    HEAD + b'"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n',
    b"data: [DONE]\n\n",
]


def passthrough_script() -> list[StreamChunk]:
    return [
        StreamChunk(raw=RAW[0]),
        StreamChunk(delta="Hi", raw=RAW[1]),
        StreamChunk(raw=RAW[2]),
        StreamChunk(raw=RAW[3], raw_usage_only=True),
        StreamChunk(finish_reason="stop", usage=Usage(3, 1), raw=RAW[4]),
    ]


async def test_passthrough_forwards_the_upstreams_bytes_exactly() -> None:
    session = ScriptedSession(passthrough_script(), passthrough=True)
    wire = await collect(passthrough_events(session, include_usage=True))  # type: ignore[arg-type]
    assert wire == b"".join(RAW)


async def test_passthrough_holds_back_the_usage_event_the_client_did_not_ask_for() -> None:
    session = ScriptedSession(passthrough_script(), passthrough=True)
    wire = await collect(passthrough_events(session, include_usage=False))  # type: ignore[arg-type]
    assert wire == RAW[0] + RAW[1] + RAW[2] + RAW[4]


async def test_a_broken_passthrough_ends_with_an_error_event() -> None:
    session = ScriptedSession(passthrough_script(), passthrough=True, fail_after=2)
    wire = await collect(passthrough_events(session, include_usage=False))  # type: ignore[arg-type]
    assert wire.startswith(RAW[0] + RAW[1])
    assert b"[DONE]" not in wire
    assert orjson.loads(data_lines(wire)[-1])["error"]["type"] == "upstream_stream_error"


def test_switchyard_headers() -> None:
    assert switchyard_headers("specific", "m", "openai", (), ()) == {
        "x-switchyard-route": "specific; model=m",
        "x-switchyard-provider": "openai",
    }
    headers = switchyard_headers("auto", "m", "anthropic", ("store", "user"), ("made_up",))
    assert headers["x-switchyard-dropped-params"] == "store,user"
    assert headers["x-switchyard-ignored-params"] == "made_up"
