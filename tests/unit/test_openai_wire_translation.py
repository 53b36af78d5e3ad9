"""The OpenAI provider reads the upstream's JSON objects as they come (no SDK model in between)."""

from __future__ import annotations

import pytest

from app.domain import StreamChunk, ToolCall, ToolCallDelta, Usage
from app.providers.openai import from_openai_chunk, from_openai_response


def test_response_dict_with_tool_calls_and_usage() -> None:
    data = {
        "id": "c1",
        "object": "chat.completion",
        "model": "gpt-x-2024",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
                        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": ""}},
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    content, usage, finish, calls = from_openai_response(data)
    assert content == ""
    assert usage == Usage(5, 7)
    assert finish == "tool_calls"
    assert calls == (ToolCall("call_1", "f", '{"a": 1}'), ToolCall("call_2", "g", "{}"))


def test_response_dict_without_usage_or_choices() -> None:
    assert from_openai_response({"choices": [], "usage": None}) == ("", None, None, ())


def test_response_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(TypeError):
        from_openai_response("<html>bad gateway</html>")


def test_chunk_dicts_content_tool_deltas_finish() -> None:
    text = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
    assert from_openai_chunk(text) == (StreamChunk(delta="Hel"), None)
    tool = {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}]},
                "finish_reason": None,
            }
        ]
    }
    chunk, _ = from_openai_chunk(tool)
    assert chunk is not None
    assert chunk.tool_calls == (ToolCallDelta(index=0, id="call_1", name="f", arguments='{"a"'),)
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": None}
    assert from_openai_chunk(done) == (StreamChunk(finish_reason="length"), None)
    empty = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    assert from_openai_chunk(empty) == (None, None)
    usage_only = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
    assert from_openai_chunk(usage_only) == (None, Usage(3, 4))
