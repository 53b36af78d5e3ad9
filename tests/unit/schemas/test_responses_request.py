"""Table tests of the Responses request decoding: input items into canonical messages (assistant turns
assembled from reasoning, message and function call items), tools, tool choice, text format, reasoning,
what only OpenAI can serve, the stored history put before a continuation, and 400s naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import FilePart, ImagePart, Message, ReasoningPart, ToolCall
from app.errors import InvalidRequestError
from app.schemas.responses_items import decode_items, open_reasoning, seal_reasoning
from app.schemas.responses_request import decode_responses

PNG = "data:image/png;base64,iVBORw0KGgo="


def decode(**fields: Any):  # type: ignore[no-untyped-def]
    return decode_responses({"model": "m", **fields})


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([{"role": "user", "content": "hi"}], [Message("user", "hi")]),
        ([{"role": "developer", "content": "rules"}], [Message("system", "rules")]),
        (
            [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
                }
            ],
            [Message("user", "ab")],
        ),
        (
            [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x":1}'},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            ],
            [
                Message("assistant", "calling", tool_calls=(ToolCall("c1", "f", '{"x":1}'), ToolCall("c2", "g", "{}"))),
                Message("tool", "one", tool_call_id="c1"),
                Message("tool", "two", tool_call_id="c2"),
            ],
        ),
        (
            [
                {
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": "think"}],
                    "encrypted_content": "gAAA",
                },
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "reasoning", "summary": [], "encrypted_content": "gBBB"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
            ],
            [
                Message(
                    "assistant",
                    tool_calls=(ToolCall("c1", "f", "{}"),),
                    reasoning=(ReasoningPart("think", "gAAA", provider="openai"),),
                ),
                Message("assistant", "done", reasoning=(ReasoningPart("", "gBBB", provider="openai"),)),
            ],
        ),
    ],
)
def test_items_to_messages(items: list[Any], expected: list[Message]) -> None:
    assert list(decode_items(items).messages) == expected


def test_media_parts() -> None:
    items = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": PNG, "detail": "low"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                {"type": "input_file", "file_id": "file-1"},
            ],
        }
    ]
    (message,) = decode_items(items).messages
    assert message.content == "look"
    assert message.parts[1:] == (
        ImagePart(data="iVBORw0KGgo=", media_type="image/png", detail="low"),
        ImagePart(url="https://example.com/a.png"),
        FilePart(data="JVBERi0=", media_type="application/pdf", filename="a.pdf"),
        FilePart(file_id="file-1"),
    )


def test_foreign_items_are_named() -> None:
    decoded = decode_items([{"type": "item_reference", "id": "msg_1"}, {"role": "user", "content": "x"}])
    assert decoded.foreign_items == ("item_reference",) and decoded.messages == (Message("user", "x"),)
    by_file = [
        {"role": "user", "content": [{"type": "input_text", "text": "see"}, {"type": "input_image", "file_id": "f"}]}
    ]
    decoded = decode_items(by_file)
    assert decoded.foreign_items == ("input_image file_id",) and decoded.messages == (Message("user", "see"),)
    assert decode(input=by_file).passthrough_only == ("input_image file_id",)


@pytest.mark.parametrize(
    "part",
    [ReasoningPart("t", "sig", provider="anthropic"), ReasoningPart("", "data", redacted=True, provider="anthropic")],
)
def test_reasoning_envelope_round_trip(part: ReasoningPart) -> None:
    sealed = seal_reasoning(part)
    assert sealed is not None and sealed.startswith("swy1.")
    assert open_reasoning(part.text, sealed) == part


def test_openai_reasoning_is_its_own_and_a_broken_envelope_keeps_the_text() -> None:
    assert seal_reasoning(ReasoningPart("t", "gAAA", provider="openai")) == "gAAA"
    assert open_reasoning("t", "swy1.!!!") == ReasoningPart("t", provider="unknown")


def test_request_fields() -> None:
    decoded = decode(
        input="hello",
        instructions="be brief",
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        tool_choice={"type": "function", "name": "f"},
        parallel_tool_calls=False,
        text={
            "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
            "verbosity": "low",
        },
        reasoning={"effort": "high", "summary": "auto"},
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        metadata={"k": "v"},
        store=False,
        user="u1",
    )
    request = decoded.request
    assert request.messages == (Message("system", "be brief"), Message("user", "hello"))
    assert request.tools[0].name == "f" and request.tools[0].strict is True
    assert request.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert request.parallel_tool_calls is False and request.verbosity == "low"
    assert request.response_format is not None and request.response_format.schema == {"type": "object"}
    assert request.reasoning is not None and (request.reasoning.effort, request.reasoning.summary) == ("high", "auto")
    assert (request.max_tokens, request.temperature, request.top_p, request.user) == (50, 0.2, 0.9, "u1")
    assert request.store is None and request.metadata == {}  # the gateway's, not the vendor's
    assert decoded.store is False and decoded.passthrough_only == ()
    assert request.source is not None and request.source.protocol == "openai.responses"


def test_allowed_tools_narrow_the_tools() -> None:
    tools = [{"type": "function", "name": n} for n in ("a", "b")]
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}
    request = decode(input="x", tools=tools, tool_choice=choice).request
    assert [t.name for t in request.tools] == ["b"] and request.tool_choice == "required"


def test_openai_only_fields() -> None:
    decoded = decode(
        input=[{"type": "item_reference", "id": "msg_1"}],
        tools=[{"type": "web_search"}, {"type": "function", "name": "f"}],
        tool_choice={"type": "web_search_preview"},
        background=True,
        x_future_field=1,
    )
    assert decoded.passthrough_only == (
        "input item item_reference",
        "tools (web_search)",
        "tool_choice",
        "background",
    )
    assert decoded.ignored == ("x_future_field",)


def test_summary_alone_asks_for_no_thinking() -> None:
    assert decode(input="x", reasoning={"summary": "auto"}).request.reasoning is None


def test_history_goes_before_this_turn_after_the_instructions() -> None:
    history = [{"role": "user", "content": "first"}, {"type": "message", "role": "assistant", "content": "answer"}]
    decoded = decode(input="second", instructions="sys", previous_response_id="resp_1").with_history(history)
    assert [m.content for m in decoded.request.messages] == ["sys", "first", "answer", "second"]
    assert decoded.request.source is not None
    body = decoded.request.source.body
    assert "previous_response_id" not in body and [i["content"] for i in body["input"]] == ["first", "answer", "second"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "input"),
        ({"input": 5}, "input"),
        ({"input": ["x"]}, "input.0"),
        ({"input": [{"role": "user", "content": 3}]}, "input.0.content"),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input.0.content.0.image_url"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]},
            "input.0.content.0.image_url",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": PNG}]}]},
            "input.0.content.0.type",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input.0.call_id"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]}, "input.0.arguments"),
        ({"input": [{"type": "reasoning", "summary": "x"}]}, "input.0.summary"),
        ({"input": "x", "tool_choice": "required"}, "tool_choice"),
        ({"input": "x", "tools": [{"type": "function", "name": "f", "parameters": []}]}, "tools.0.parameters"),
        ({"input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"input": "x", "top_p": 2}, "top_p"),
        ({"input": "x", "metadata": {"k" * 65: "v"}}, "metadata." + "k" * 64),
        ({"input": "x", "store": "yes"}, "store"),
    ],
)
def test_invalid_requests_name_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode(**fields)
    assert info.value.status_code == 400 and info.value.details["param"] == param


def test_namespace_tools_are_flattened() -> None:
    inner = [
        {"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}},
        {"type": "function", "name": "wait"},
    ]
    tools = [{"type": "function", "name": "exec"}, {"type": "namespace", "name": "agents", "tools": inner}]
    decoded = decode(input="x", tools=tools)
    assert [t.name for t in decoded.request.tools] == ["exec", "spawn_agent", "wait"]
    assert decoded.namespaces == {"spawn_agent": "agents", "wait": "agents"} and decoded.passthrough_only == ()
    twice = decode(input="x", tools=[*tools, {"type": "function", "name": "wait"}])
    assert twice.passthrough_only == ("tools (a function name used twice)",)
