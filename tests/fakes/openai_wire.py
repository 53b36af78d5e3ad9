"""OpenAI Chat Completions wire format: request parsing, bodies, SSE chunks, errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from tests.fakes.scripts import (
    ParsedRequest,
    Plan,
    StreamEvent,
    WireError,
    arguments_json,
    content_text,
    json_fragments,
    split_chunks,
)

VENDOR = "openai"
SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"
FINGERPRINT = "fp_fake0001"

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM). Please try again later.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def parse(body: Mapping[str, Any]) -> ParsedRequest:
    """Extract model, stream flag and message text from a chat completions request."""
    messages = body.get("messages") or []
    last_user = ""
    texts: list[str] = []
    for message in messages:
        text = content_text(message.get("content"))
        texts.append(text)
        if message.get("role") == "user":
            last_user = text
    stream_options = body.get("stream_options") or {}
    return ParsedRequest(
        model=str(body.get("model", "")),
        stream=bool(body.get("stream")),
        last_user_text=last_user,
        input_text=" ".join(texts),
        include_usage=bool(stream_options.get("include_usage")),
    )


def api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The bearer token from ``Authorization``."""
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def response_headers() -> dict[str, str]:
    """Headers OpenAI puts on every response."""
    return {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-processing-ms": "1"}


def _usage(plan: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(plan: Plan) -> str:
    if plan.truncated:
        return "length"
    return "tool_calls" if plan.tool_calls else "stop"


def _call_id(plan: Plan, index: int) -> str:
    return f"call_{plan.ident[:16]}{index}"


def completion(plan: Plan) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.text if plan.text or not plan.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if plan.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(plan, i),
                "type": "function",
                "function": {"name": call["name"], "arguments": arguments_json(call)},
            }
            for i, call in enumerate(plan.tool_calls)
        ]
    return {
        "id": f"chatcmpl-{plan.ident}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(plan)}],
        "usage": _usage(plan),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _sse(payload: Mapping[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
    """``chat.completion.chunk`` events, an optional usage chunk, then ``data: [DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{plan.ident}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if parsed.include_usage:
            body["usage"] = None
        return body

    events = [StreamEvent(_sse(chunk({"role": "assistant", "content": "", "refusal": None})))]
    for piece in split_chunks(plan.text):
        events.append(StreamEvent(_sse(chunk({"content": piece})), content=True))
    for i, call in enumerate(plan.tool_calls):
        head = {
            "index": i,
            "id": _call_id(plan, i),
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        events.append(StreamEvent(_sse(chunk({"tool_calls": [head]})), content=True))
        for piece in json_fragments(arguments_json(call)):
            delta = {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
            events.append(StreamEvent(_sse(chunk(delta)), content=True))
    events.append(StreamEvent(_sse(chunk({}, _finish_reason(plan)))))
    if parsed.include_usage:
        usage_chunk = chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _usage(plan)
        events.append(StreamEvent(_sse(usage_chunk)))
    events.append(StreamEvent(_sse("[DONE]")))
    return events


def error(status: int, message: str | None = None) -> WireError:
    """The ``{"error": {message, type, param, code}}`` body for an HTTP status."""
    default = (
        ("server_error", None, "Internal error.") if status >= 500 else ("invalid_request_error", None, "Bad request.")
    )
    err_type, code, default_message = _ERRORS.get(status, default)
    body = {"error": {"message": message or default_message, "type": err_type, "param": None, "code": code}}
    return WireError(status=status, body=body)


def stream_error(status: int, message: str | None = None) -> bytes:
    """An in-stream error event (sent with HTTP 200 after some chunks)."""
    return _sse(error(status, message).body)


def auth_error(key: str | None) -> WireError:
    """The 401 OpenAI returns for a wrong key."""
    shown = f"{key[:3]}***{key[-4:]}" if key and len(key) > 8 else (key or "")
    message = (
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
        if key
        else "You didn't provide an API key."
    )
    return error(401, message)


def models_list(names: list[str]) -> dict[str, Any]:
    """The ``GET /v1/models`` list."""
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 1700000000, "owned_by": "openai"} for n in names],
    }
