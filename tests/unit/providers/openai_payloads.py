"""Recorded OpenAI chat completions payloads (as the API sends them) and targets for the codec tests."""

from __future__ import annotations

import json
from typing import Any

from app.pricing import Price
from app.providers.base import ModelTarget, SSEEvent
from app.settings.catalogue import ModelConfig

TARGET = ModelTarget(
    "gpt", "openai", "gpt-4o-2024-08-06", 30.0, Price(1.0, 2.0, "config"), ModelConfig(provider="openai")
)
COMPAT_TARGET = ModelTarget(
    "local",
    "openai_compatible",
    "qwen3-8b",
    30.0,
    Price(0.0, 0.0, "config"),
    ModelConfig(provider="openai_compatible", api_base="http://127.0.0.1:8000/v1"),
)
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 192,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def completion(*choices: dict[str, Any], usage: Any = USAGE, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": list(choices),
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_50cad350e4",
        **extra,
    }


def choice(
    message: dict[str, Any], finish: str | None = "stop", index: int = 0, logprobs: Any = None
) -> dict[str, Any]:
    return {
        "index": index,
        "message": {"role": "assistant", "refusal": None, "annotations": [], **message},
        "logprobs": logprobs,
        "finish_reason": finish,
    }


def sse(payload: dict[str, Any] | str) -> SSEEvent:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return SSEEvent(event=None, data=data, raw=f"data: {data}\n\n".encode())


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, index: int = 0, **extra: Any
) -> dict[str, Any]:
    choices = (
        []
        if delta is None
        else [{"index": index, "delta": delta, "logprobs": extra.pop("logprobs", None), "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_eb9dce56a8",
        "choices": choices,
        **extra,
    }


STREAM_USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
TEXT_STREAM = [
    sse(chunk({"role": "assistant", "content": "", "refusal": None}, usage=None)),
    sse(chunk({"content": "Hello"}, usage=None)),
    sse(chunk({"content": " world"}, usage=None)),
    sse(chunk({}, "stop", usage=None)),
    sse(chunk(None, usage=STREAM_USAGE)),
    sse("[DONE]"),
]
TOOL_STREAM = [
    sse(chunk({"role": "assistant", "content": None})),
    sse(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        )
    ),
    sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location'}}]})),
    sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '":"Paris"}'}}]})),
    sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_2", "type": "function", "function": {"name": "noop", "arguments": "{}"}}
                ]
            }
        )
    ),
    sse(chunk({}, "tool_calls")),
    sse("[DONE]"),
]
