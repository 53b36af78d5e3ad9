"""The signature rule for reasoning in Anthropic thinking blocks, table-driven: gateway-made signatures for
other vendors' reasoning (sealed, opened, taken out of a pass-through body), the stream encoder's thinking
and redacted blocks, and the tool-use ids of a passed-through answer tagged with their model."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.domain import ChatRequest, Message, ReasoningPart, StreamChunk
from app.providers.anthropic import CODEC
from app.providers.anthropic_stream import AnthropicStreamDecoder
from app.providers.anthropic_thinking import (
    ForeignSignature,
    open_signature,
    seal_signature,
    strip_foreign_thinking,
    thinking_signature,
)
from app.providers.base import SSEEvent
from app.schemas.anthropic_ids import model_of_tool_id, tag_event_ids, tag_message_ids
from app.schemas.anthropic_request import decode_messages_request
from app.schemas.anthropic_response import EventEncoder
from tests.unit.providers.test_anthropic_codec import TARGET

OWN = "EqQBCkYIBRgCKkBwZ2Vh+/c2lnbmVk="  # an Anthropic signature: standard base64, no "."


@pytest.mark.parametrize("provider", ["openai", "google", "openai_compatible", "llamacpp"])
@pytest.mark.parametrize("signature", [None, "gAAAAB-encrypted/+=", "x" * 2000])
@pytest.mark.parametrize("redacted", [False, True])
def test_foreign_signatures_are_sealed_and_open(provider: str, signature: str | None, redacted: bool) -> None:
    sealed = thinking_signature(provider, signature, redacted=redacted)
    assert sealed.startswith("swy1.") and sealed != signature
    assert open_signature(sealed) == ForeignSignature(provider, signature, redacted)


def test_anthropic_signatures_stay_anthropics() -> None:
    assert thinking_signature("anthropic", OWN) == OWN
    assert open_signature(OWN) is None
    assert open_signature(thinking_signature("anthropic", None)) == ForeignSignature("anthropic", None, False)
    assert open_signature("swy1.not-base64!") == ForeignSignature("unknown", None, False)


def test_the_client_gives_foreign_reasoning_back_to_its_vendor() -> None:
    content = [
        {"type": "thinking", "thinking": "mine", "signature": OWN},
        {"type": "thinking", "thinking": "gemini's", "signature": seal_signature("google", None)},
        {"type": "redacted_thinking", "data": seal_signature("openai", "enc", redacted=True)},
        {"type": "text", "text": "ok"},
    ]
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": content}],
    }
    (_, assistant) = decode_messages_request(body).request.messages
    assert assistant.reasoning == (
        ReasoningPart("mine", OWN, provider="anthropic"),
        ReasoningPart("gemini's", None, provider="google"),
        ReasoningPart("", "enc", redacted=True, provider="openai"),
    )


def _body(*assistant: Any, thinking: bool = True, last: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 4096,
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": list(assistant)},
            {"role": "user", "content": last or [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
        ],
        "future": {"kept": True},
    }
    if thinking:
        body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    return body


FOREIGN = {"type": "thinking", "thinking": "other", "signature": seal_signature("google", None)}
FOREIGN_REDACTED = {"type": "redacted_thinking", "data": seal_signature("openai", "enc", redacted=True)}
MINE = {"type": "thinking", "thinking": "mine", "signature": OWN}
USE = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
TEXT = {"type": "text", "text": "calling"}


def test_a_body_without_foreign_reasoning_goes_as_it_is() -> None:
    assert strip_foreign_thinking(_body(MINE, USE)) is None
    assert strip_foreign_thinking(_body(TEXT)) is None
    assert strip_foreign_thinking({"model": "m"}) is None


def test_foreign_reasoning_is_taken_out_and_thinking_turned_off() -> None:
    body = _body(FOREIGN, FOREIGN_REDACTED, TEXT, USE)
    stripped = strip_foreign_thinking(body)
    assert stripped is not None
    assert stripped["messages"][1]["content"] == [TEXT, USE]
    assert "thinking" not in stripped  # the tool-use turn lost its only thinking: Anthropic would refuse it on
    assert stripped["future"] == {"kept": True} and stripped["messages"][0] is body["messages"][0]
    assert body["messages"][1]["content"][0] == FOREIGN  # the client's body itself is untouched


def test_thinking_stays_on_when_the_tool_turn_keeps_anthropics_own() -> None:
    stripped = strip_foreign_thinking(_body(MINE, FOREIGN, USE))
    assert stripped is not None and stripped["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert stripped["messages"][1]["content"] == [MINE, USE]
    earlier = _body(TEXT, last="next question")  # a foreign block in an earlier turn only
    earlier["messages"][1:1] = [{"role": "assistant", "content": [FOREIGN, TEXT]}, {"role": "user", "content": "x"}]
    cleaned = strip_foreign_thinking(earlier)
    assert cleaned is not None and "thinking" in cleaned and cleaned["messages"][1]["content"] == [TEXT]


def test_an_assistant_turn_of_foreign_reasoning_only_goes() -> None:
    stripped = strip_foreign_thinking(_body(FOREIGN, last="go on", thinking=False))
    assert stripped is not None
    assert [m["role"] for m in stripped["messages"]] == ["user", "user"]


@pytest.mark.parametrize("count_tokens", [False, True])
def test_the_passthrough_call_strips_foreign_reasoning(count_tokens: bool) -> None:
    body = _body(FOREIGN, USE)
    request = decode_messages_request(body).request
    target = TARGET
    call = CODEC.encode_count_tokens(request, target) if count_tokens else CODEC.encode(request, target, stream=False)
    sent = orjson.loads(call.body)
    assert sent["messages"][1]["content"] == [USE] and "thinking" not in sent and sent["future"] == {"kept": True}


# --- the stream encoder ---------------------------------------------------------------------------------------


def _run(provider: str, chunks: list[StreamChunk]) -> list[tuple[str, dict[str, Any]]]:
    encoder = EventEncoder("msg_1", "m", 5, provider=provider)
    return encoder.start() + [e for c in chunks for e in encoder.encode(c)]


def _blocks(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The content blocks the events build, as an Anthropic client accumulates them."""
    blocks: list[dict[str, Any]] = []
    for name, data in events:
        if name == "content_block_start":
            blocks.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            delta, block = data["delta"], blocks[data["index"]]
            if delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            elif delta["type"] == "text_delta":
                block["text"] += delta["text"]
    return blocks


def test_foreign_streamed_thinking_closes_with_a_gateway_signature() -> None:
    chunks = [
        StreamChunk(reasoning="a"),
        StreamChunk(reasoning="b"),
        StreamChunk(delta="hi"),
        StreamChunk(finish_reason="stop"),
    ]
    events = _run("google", chunks)
    thinking, text = _blocks(events)
    assert thinking["thinking"] == "ab" and open_signature(thinking["signature"]) == ForeignSignature(
        "google", None, False
    )
    assert text == {"type": "text", "text": "hi"}
    signed = _blocks(
        _run("openai", [StreamChunk(reasoning="a"), StreamChunk(signature="enc"), StreamChunk(finish_reason="stop")])
    )
    assert open_signature(signed[0]["signature"]) == ForeignSignature("openai", "enc", False)
    names = [
        n
        for n, d in _run(
            "openai", [StreamChunk(reasoning="a"), StreamChunk(signature="enc"), StreamChunk(finish_reason="stop")]
        )
    ]
    assert names.count("content_block_delta") == 2  # one thinking_delta, one signature_delta


def test_anthropic_streamed_reasoning_keeps_its_signature_and_redacted_blocks() -> None:
    chunks = [
        StreamChunk(redacted="EmwKAhgB"),
        StreamChunk(reasoning="why"),
        StreamChunk(signature=OWN),
        StreamChunk(delta="ok"),
        StreamChunk(finish_reason="stop"),
    ]
    events = _run("anthropic", chunks)
    assert _blocks(events) == [
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
        {"type": "thinking", "thinking": "why", "signature": OWN},
        {"type": "text", "text": "ok"},
    ]
    names = [n for n, _ in events]
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_stop"]  # redacted: whole
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    foreign = _blocks(_run("openai", [StreamChunk(redacted="enc"), StreamChunk(finish_reason="stop")]))
    assert open_signature(foreign[0]["data"]) == ForeignSignature("openai", "enc", True)


MESSAGE: dict[str, Any] = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": []}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
RECORDED_REDACTED = [
    ("message_start", {"type": "message_start", "message": {**MESSAGE, "usage": {"input_tokens": 5}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": REDACTED}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
    ("message_stop", {"type": "message_stop"}),
]  # fmt: skip


def test_a_translated_anthropic_stream_keeps_redacted_thinking() -> None:
    """Anthropic's stream decoded (not passed through), then encoded as Anthropic events again: the
    redacted block's data arrives unchanged."""
    decoder = AnthropicStreamDecoder(ChatRequest(messages=(Message("user", "q"),)), TARGET)
    chunks: list[StreamChunk] = []
    for name, data in RECORDED_REDACTED:
        raw = f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n".encode()
        chunks += decoder.feed(SSEEvent(event=name, data=orjson.dumps(data).decode(), raw=raw))
    chunks.append(decoder.finish())
    assert chunks[0] == StreamChunk(redacted="EmwKAhgBEgy3va3pzix/LafPsn4a")
    blocks = _blocks(_run("anthropic", chunks))
    assert blocks == [
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        {"type": "text", "text": "Hi"},
    ]


# --- tool-use ids of a passed-through answer ------------------------------------------------------------------


def test_passed_through_tool_ids_are_tagged_and_nothing_else_changes() -> None:
    body = (
        b'{"id":"msg_1","type":"message","content":[{"type":"text","text":"see toolu_01X"},'
        b'{"type": "tool_use", "id": "toolu_01X", "name": "f", "input": {}}],  "stop_reason":"tool_use"}'
    )
    tagged = tag_message_ids(body, "claude-x")
    (use,) = [b for b in orjson.loads(tagged)["content"] if b["type"] == "tool_use"]
    assert model_of_tool_id(use["id"]) == "claude-x" and use["id"].endswith("_toolu_01X")
    assert tagged.replace(use["id"].encode(), b"toolu_01X") == body  # only the quoted id changed
    assert (
        tag_message_ids(b'{"content":[{"type":"text","text":"x"}]}', "m") == b'{"content":[{"type":"text","text":"x"}]}'
    )
    assert tag_message_ids(b"not json tool_use", "m") == b"not json tool_use"


def test_passed_through_stream_events_are_tagged() -> None:
    block = b'{"type":"tool_use","id":"toolu_9","name":"f","input":{}}'
    start = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":' + block + b"}\n\n"
    )
    tagged = tag_event_ids(start, "claude-x")
    data = orjson.loads(tagged.split(b"data: ", 1)[1])
    assert model_of_tool_id(data["content_block"]["id"]) == "claude-x"
    assert tagged.startswith(b"event: content_block_start\ndata: ") and tagged.endswith(b"\n\n")
    fragment = b'{"type":"input_json_delta","partial_json":"{\\"tool_use\\""}'
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":' + fragment + b"}\n\n"
    assert tag_event_ids(delta, "claude-x") == delta
