"""The OpenAI chat completions codec, streams: recorded ``chat.completion.chunk`` sequences, truncated and
malformed ones, and the pass-through's raw events (``app.providers.openai_decode.OpenAIStreamDecoder``)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import ChatRequest, Message, SourceBody, ToolCallDelta, Usage
from app.errors import ContextWindowExceededError, UpstreamRateLimitError, UpstreamServerError, UpstreamStreamError
from app.providers.base import SSEEvent
from app.providers.openai import CODEC
from app.providers.openai_compatible import CODEC as COMPAT
from tests.unit.providers.openai_payloads import COMPAT_TARGET, TARGET, TEXT_STREAM, TOOL_STREAM, chunk, sse

REQUEST = ChatRequest((Message("user", "hi"),))


def run(events: list[SSEEvent], request: ChatRequest = REQUEST, codec: Any = CODEC) -> tuple[list[Any], Any, Any]:
    decoder = codec.stream_decoder(request, TARGET if codec is CODEC else COMPAT_TARGET)
    chunks = [c for event in events for c in decoder.feed(event)]
    return chunks, decoder.finish(), decoder


def test_text_stream() -> None:
    chunks, final, decoder = run(TEXT_STREAM)
    assert [c.delta for c in chunks] == ["Hello", " world"]
    assert all(c.finish_reason is None and c.raw is None for c in chunks)
    assert (final.finish_reason, final.usage, final.raw) == ("stop", Usage(19, 10), None)
    assert decoder.done


def test_tool_call_stream() -> None:
    chunks, final, _ = run(TOOL_STREAM)
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0] == ToolCallDelta(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", "")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"location":"Paris"}'
    assert deltas[-1] == ToolCallDelta(1, "call_2", "noop", "{}")
    assert (final.finish_reason, final.usage) == ("tool_calls", None)


def test_tool_deltas_without_index() -> None:
    events = [
        sse(chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x"'}}]})),
        sse(chunk({"tool_calls": [{"function": {"arguments": ":1}"}}]})),
        sse(chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": {"y": 2}}}]})),
        sse(chunk({"tool_calls": [{"id": "c", "function": {"name": "h"}}, {"id": "d", "function": {"name": "i"}}]})),
        sse(chunk({}, "tool_calls")),
    ]
    chunks, final, decoder = run(events, codec=COMPAT)
    deltas = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "a", "f", '{"x"'),
        (0, None, None, ":1}"),
        (1, "b", "g", '{"y":2}'),
        (2, "c", "h", ""),
        (3, "d", "i", ""),
    ]
    assert final.finish_reason == "tool_calls" and decoder.done  # no [DONE]: the finish reason ends it


def test_refusal_reasoning_and_logprobs_deltas() -> None:
    logprobs = {"content": [{"token": "4", "logprob": -0.01, "bytes": [52], "top_logprobs": []}], "refusal": None}
    events = [
        sse(chunk({"role": "assistant", "content": ""})),
        sse(chunk({"reasoning_content": "2+2"})),
        sse(chunk({"reasoning": "=4"})),
        sse(chunk({"content": "4"}, logprobs=logprobs)),
        sse(chunk({"refusal": "I can't"})),
        sse(chunk({}, "stop")),
        sse("[DONE]"),
    ]
    chunks, final, _ = run(events, codec=COMPAT)
    assert [(c.reasoning, c.delta, c.refusal) for c in chunks] == [
        ("2+2", "", ""),
        ("=4", "", ""),
        ("", "4", ""),
        ("", "", "I can't"),
    ]
    assert chunks[2].logprobs == logprobs
    assert final.finish_reason == "stop"


def test_n_choices_stream() -> None:
    events = [
        sse(chunk({"role": "assistant", "content": ""}, index=0)),
        sse(chunk({"role": "assistant", "content": ""}, index=1)),
        sse(chunk({"content": "A"}, index=0)),
        sse(chunk({"content": "B"}, index=1)),
        sse(chunk({}, "length", index=1)),
        sse(chunk({}, "stop", index=0)),
        sse("[DONE]"),
    ]
    decoder = CODEC.stream_decoder(ChatRequest((Message("user", "x"),), n=2), TARGET)
    chunks = [c for e in events[:5] for c in decoder.feed(e)]
    assert [(c.choice, c.delta) for c in chunks] == [(0, "A"), (1, "B")]
    assert not decoder.done  # choice 0 has not finished
    list(decoder.feed(events[5]))
    assert decoder.done and decoder.finish_reasons == {1: "length", 0: "stop"}
    assert decoder.finish().finish_reason == "stop"


@pytest.mark.parametrize("cut", [1, 2, 3], ids=["after role", "mid text", "all text, no finish reason"])
def test_truncated_streams_raise_on_finish(cut: int) -> None:
    decoder = CODEC.stream_decoder(REQUEST, TARGET)
    for event in TEXT_STREAM[:cut]:
        list(decoder.feed(event))
    assert not decoder.done
    with pytest.raises(UpstreamStreamError):
        decoder.finish()


def test_done_without_a_finish_reason_still_raises() -> None:
    decoder = CODEC.stream_decoder(REQUEST, TARGET)
    for event in [*TEXT_STREAM[:3], sse("[DONE]")]:
        list(decoder.feed(event))
    assert decoder.done
    with pytest.raises(UpstreamStreamError):
        decoder.finish()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            sse({"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}}),
            UpstreamServerError,
        ),
        (
            sse({"error": {"message": "Rate limit", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}),
            UpstreamRateLimitError,
        ),
        (
            SSEEvent("error", '{"error":{"message":"too long","code":"context_length_exceeded"}}', b""),
            ContextWindowExceededError,
        ),
        (sse('{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"He'), UpstreamServerError),
        (sse("[1,2]"), UpstreamServerError),
        (sse("<html>"), UpstreamServerError),
        (sse(chunk(None) | {"choices": "x"}), UpstreamServerError),
        (
            sse(chunk({"content": "x"}) | {"usage": {"prompt_tokens": "many", "completion_tokens": 1}}),
            UpstreamServerError,
        ),
        (sse(chunk({"tool_calls": "x"})), UpstreamServerError),
        (sse(chunk(None) | {"choices": [{"index": 0, "delta": "text"}]}), UpstreamServerError),
    ],
    ids=[
        "server_error",
        "rate limit",
        "event: error",
        "truncated",
        "array",
        "html",
        "choices",
        "usage",
        "tool_calls",
        "delta",
    ],
)
def test_bad_stream_events_are_typed_errors(event: SSEEvent, expected: type) -> None:
    decoder = CODEC.stream_decoder(REQUEST, TARGET)
    list(decoder.feed(TEXT_STREAM[0]))
    with pytest.raises(expected):
        list(decoder.feed(event))


# --- pass-through streams -------------------------------------------------------------------------------


def _passthrough_request(**body: Any) -> ChatRequest:
    return ChatRequest(
        (Message("user", "hi"),),
        source=SourceBody("openai.chat", {"model": "gpt", "messages": [], "stream": True, **body}),
    )


def test_passthrough_stream_forwards_every_event_and_holds_done() -> None:
    decoder = CODEC.stream_decoder(_passthrough_request(), TARGET)
    chunks = [c for e in TEXT_STREAM for c in decoder.feed(e)]
    assert [c.raw for c in chunks] == [e.raw for e in TEXT_STREAM[:-1]]  # role chunk and finish chunk included
    assert [c.delta for c in chunks] == ["", "Hello", " world", "", ""]
    assert all(c.finish_reason is None for c in chunks)
    assert [c.raw_usage_only for c in chunks] == [False, False, False, False, True]
    final = decoder.finish()
    assert (final.raw, final.finish_reason, final.usage) == (b"data: [DONE]\n\n", "stop", Usage(19, 10))


def test_passthrough_usage_chunk_is_forwarded_when_the_client_asked() -> None:
    decoder = CODEC.stream_decoder(_passthrough_request(stream_options={"include_usage": True}), TARGET)
    chunks = [c for e in TEXT_STREAM for c in decoder.feed(e)]
    assert not any(c.raw_usage_only for c in chunks)


def test_passthrough_stream_without_finish_never_forwards_done() -> None:
    decoder = CODEC.stream_decoder(_passthrough_request(), TARGET)
    chunks = [c for e in [*TEXT_STREAM[:3], sse("[DONE]")] for c in decoder.feed(e)]
    assert all(c.raw != b"data: [DONE]\n\n" for c in chunks)
    with pytest.raises(UpstreamStreamError):
        decoder.finish()


def test_passthrough_tool_stream_keeps_canonical_fields() -> None:
    decoder = COMPAT.stream_decoder(_passthrough_request(), COMPAT_TARGET)
    chunks = [c for e in TOOL_STREAM for c in decoder.feed(e)]
    assert [c.raw for c in chunks] == [e.raw for e in TOOL_STREAM[:-1]]
    assert chunks[1].tool_calls[0].name == "get_weather"
    assert decoder.finish().raw == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("delta", "extra", "expected"),
    [
        ({"content": "Hi"}, {}, {"delta": "Hi"}),
        ({"role": "assistant", "content": "Hi"}, {}, {"delta": "Hi"}),
        ({"content": "Hi", "reasoning_content": "hmm"}, {}, {"delta": "Hi", "reasoning": "hmm"}),
        ({"content": "Hi", "refusal": "no"}, {}, {"delta": "Hi", "refusal": "no"}),
        ({"content": "Hi"}, {"logprobs": {"content": [{"token": "Hi", "logprob": -0.1}]}}, {"delta": "Hi"}),
        ({"content": [{"type": "text", "text": "H"}, {"type": "text", "text": "i"}]}, {}, {"delta": "Hi"}),
        ({"content": ""}, {"logprobs": {"content": []}}, {"delta": ""}),
    ],
)
def test_token_chunks_carry_everything_their_delta_says(
    delta: dict[str, Any], extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    """A plain token takes a shorter way through the decoder than a delta with more in it: the same chunk."""
    decoder = CODEC.stream_decoder(REQUEST, TARGET)
    chunks = decoder.feed(sse(chunk(delta, index=0, **extra)))
    assert len(chunks) == 1
    got = chunks[0]
    assert got.delta == expected["delta"]
    assert got.reasoning == expected.get("reasoning", "")
    assert got.refusal == expected.get("refusal", "")
    assert got.logprobs == extra.get("logprobs")
    assert (got.choice, got.finish_reason, got.tool_calls) == (0, None, ())


def test_a_token_with_its_finish_reason_finishes() -> None:
    chunks, final, _ = run([sse(chunk({"content": "Hi"}, finish="length"))])
    assert [c.delta for c in chunks] == ["Hi"]
    assert final.finish_reason == "length"
