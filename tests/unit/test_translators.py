"""Pure translators of each adapter: our request to the vendor's, the vendor's response to ours."""

from __future__ import annotations

import pytest
from anthropic.types import Message as AnthropicMessage
from google.genai import types as gtypes
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from app.domain import ChatRequest, Message, Usage
from app.pricing import Price
from app.providers.anthropic import DEFAULT_MAX_TOKENS, from_anthropic_response, to_anthropic_request
from app.providers.base import ModelTarget, normalize_finish_reason
from app.providers.google import from_gemini_response, to_gemini_request
from app.providers.openai import from_openai_chunk, from_openai_response, to_openai_request
from app.settings.catalogue import ModelConfig

TARGET = ModelTarget("alias", "openai", "upstream-id", 12.0, Price(1.0, 2.0, "config"), ModelConfig(provider="openai"))
REQUEST = ChatRequest(
    messages=(
        Message("system", "be brief"),
        Message("user", "hello"),
        Message("assistant", "hi"),
        Message("user", "again"),
    ),
    max_tokens=50,
    temperature=0.3,
    top_p=0.9,
    stop=("END",),
)


def test_openai_request_passes_every_parameter() -> None:
    kwargs = to_openai_request(REQUEST, TARGET, stream=False)
    assert kwargs["model"] == "upstream-id"
    assert kwargs["messages"][0] == {"role": "system", "content": "be brief"}
    assert kwargs["max_completion_tokens"] == 50
    assert (kwargs["temperature"], kwargs["top_p"], kwargs["stop"]) == (0.3, 0.9, ["END"])
    assert "stream" not in kwargs


def test_openai_stream_request_asks_for_usage() -> None:
    kwargs = to_openai_request(REQUEST, TARGET, stream=True, max_tokens_field="max_tokens")
    assert kwargs["stream"] is True
    assert kwargs["stream_options"] == {"include_usage": True}
    assert kwargs["max_tokens"] == 50


def test_anthropic_request_moves_system_out_of_messages() -> None:
    kwargs = to_anthropic_request(REQUEST, TARGET)
    assert kwargs["system"] == "be brief"
    assert [m["role"] for m in kwargs["messages"]] == ["user", "assistant", "user"]
    assert kwargs["stop_sequences"] == ["END"]
    assert kwargs["max_tokens"] == 50


def test_anthropic_requires_max_tokens_so_a_default_is_sent() -> None:
    kwargs = to_anthropic_request(ChatRequest(messages=(Message("user", "x"),)), TARGET)
    assert kwargs["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "system" not in kwargs


def test_gemini_request_uses_system_instruction_and_model_role() -> None:
    kwargs = to_gemini_request(REQUEST, TARGET)
    config = kwargs["config"]
    assert config.system_instruction == "be brief"
    assert [c["role"] for c in kwargs["contents"]] == ["user", "model", "user"]
    assert (config.max_output_tokens, config.temperature, config.top_p) == (50, 0.3, 0.9)
    assert config.stop_sequences == ["END"]
    assert config.http_options.timeout == 12000


def test_openai_response_translation() -> None:
    response = ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-x",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi!"}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        }
    )
    assert from_openai_response(response) == ("Hi!", Usage(9, 2), "stop", ())


def test_openai_usage_only_chunk() -> None:
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
    )
    assert from_openai_chunk(chunk) == (None, Usage(3, 4))


def test_anthropic_response_translation() -> None:
    message = AnthropicMessage.model_validate(
        {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 5},
        }
    )
    assert from_anthropic_response(message) == ("Hello there", Usage(12, 5), "length", ())


def test_gemini_response_translation() -> None:
    response = gtypes.GenerateContentResponse.model_validate(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Bonjour"}]}, "finish_reason": "STOP"}],
            "usage_metadata": {"prompt_token_count": 4, "candidates_token_count": 1, "total_token_count": 5},
        }
    )
    assert from_gemini_response(response) == ("Bonjour", Usage(4, 1), "stop", ())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("stop", "stop"),
        (None, None),
    ],
)
def test_finish_reasons_are_normalised(raw: str | None, expected: str | None) -> None:
    assert normalize_finish_reason(raw) == expected
