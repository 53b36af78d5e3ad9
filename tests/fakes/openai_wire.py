"""OpenAI Chat Completions wire format: request parsing, bodies, SSE chunks, errors.

Besides text and tool calls the fake speaks, in OpenAI's own format: ``n`` choices, ``logprobs`` (one
entry per word-chunk token, with ``top_logprobs`` alternatives), ``refusal`` (``message.refusal`` with
null content; ``delta.refusal`` when streamed), cached and reasoning tokens in the usage details.
Reasoning text (``Reply.reasoning``) comes as ``reasoning_content``, the form OpenAI-compatible servers
(vLLM, DeepSeek) use; OpenAI itself never returns its reasoning in chat completions. A ``json_schema``
``response_format`` is answered with the scripted text (script JSON text for ``.parse()``).
"""

from __future__ import annotations

import contextvars
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class OpenAIParsedRequest(ParsedRequest):
    """The OpenAI options that change the shape of the answer."""

    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0


# ``completion(plan)`` is called by the player without the parsed request; ``parse`` runs in the same
# request task just before, so the options reach ``completion`` through this context variable.
_CURRENT: contextvars.ContextVar[OpenAIParsedRequest | None] = contextvars.ContextVar("openai_parsed", default=None)


def _int_option(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def parse(body: Mapping[str, Any]) -> OpenAIParsedRequest:
    """Extract model, stream flag, message text and the answer-shaping options from a chat completions
    request."""
    messages = body.get("messages") or []
    last_user = ""
    texts: list[str] = []
    for message in messages:
        text = content_text(message.get("content"))
        texts.append(text)
        if message.get("role") == "user":
            last_user = text
    stream_options = body.get("stream_options") or {}
    parsed = OpenAIParsedRequest(
        model=str(body.get("model", "")),
        stream=bool(body.get("stream")),
        last_user_text=last_user,
        input_text=" ".join(texts),
        include_usage=bool(stream_options.get("include_usage")),
        n=_int_option(body.get("n"), 1),
        logprobs=body.get("logprobs") is True,
        top_logprobs=_int_option(body.get("top_logprobs"), 0),
    )
    _CURRENT.set(parsed)
    return parsed


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
        "prompt_tokens_details": {"cached_tokens": plan.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": plan.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(plan: Plan) -> str:
    if plan.truncated:
        return "length"
    return "tool_calls" if plan.tool_calls and plan.refusal is None else "stop"


def _call_id(plan: Plan, index: int, choice: int = 0) -> str:
    return f"call_{plan.ident[:16]}{choice}{index}" if choice else f"call_{plan.ident[:16]}{index}"


def _token_logprob(token: str, top: int) -> dict[str, Any]:
    """One ``logprobs.content`` entry (the fake's tokens are its word chunks)."""
    entry: dict[str, Any] = {"token": token, "logprob": -0.25, "bytes": list(token.encode())}
    alternatives = [token, *(f"{token.strip()}_{k}" for k in range(1, top))][:top]
    entry["top_logprobs"] = [
        {"token": alt, "logprob": -0.25 * (k + 1), "bytes": list(alt.encode())} for k, alt in enumerate(alternatives)
    ]
    return entry


def _logprobs(pieces: list[str], parsed: OpenAIParsedRequest | None) -> dict[str, Any] | None:
    if parsed is None or not parsed.logprobs:
        return None
    return {"content": [_token_logprob(p, parsed.top_logprobs) for p in pieces], "refusal": None}


def _message(plan: Plan, choice: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if plan.refusal is not None else plan.text if plan.text or not plan.tool_calls else None,
        "refusal": plan.refusal,
        "annotations": [],
    }
    if plan.reasoning is not None:
        message["reasoning_content"] = plan.reasoning
    if plan.tool_calls and plan.refusal is None:
        message["tool_calls"] = [
            {
                "id": _call_id(plan, i, choice),
                "type": "function",
                "function": {"name": call["name"], "arguments": arguments_json(call)},
            }
            for i, call in enumerate(plan.tool_calls)
        ]
    return message


def completion(plan: Plan, parsed: ParsedRequest | None = None) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object (``n`` choices, logprobs when asked)."""
    options = parsed if isinstance(parsed, OpenAIParsedRequest) else _CURRENT.get()
    n = options.n if options is not None else 1
    pieces = split_chunks(plan.text) if plan.refusal is None else []
    choices = [
        {
            "index": i,
            "message": _message(plan, i),
            "logprobs": _logprobs(pieces, options),
            "finish_reason": _finish_reason(plan),
        }
        for i in range(n)
    ]
    return {
        "id": f"chatcmpl-{plan.ident}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": choices,
        "usage": _usage(plan),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _sse(payload: Mapping[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
    """``chat.completion.chunk`` events (each of the ``n`` choices in turn), an optional usage chunk,
    then ``data: [DONE]``."""
    created = int(time.time())
    options = parsed if isinstance(parsed, OpenAIParsedRequest) else None
    n = options.n if options is not None else 1

    def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0, logprobs: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{plan.ident}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
        }
        if parsed.include_usage:
            body["usage"] = None
        return body

    events: list[StreamEvent] = []
    for c in range(n):
        events.append(StreamEvent(_sse(chunk({"role": "assistant", "content": "", "refusal": None}, index=c))))
        if plan.reasoning is not None:
            for piece in split_chunks(plan.reasoning):
                events.append(StreamEvent(_sse(chunk({"reasoning_content": piece}, index=c)), content=True))
        if plan.refusal is not None:
            for piece in split_chunks(plan.refusal):
                events.append(StreamEvent(_sse(chunk({"refusal": piece}, index=c)), content=True))
            events.append(StreamEvent(_sse(chunk({}, _finish_reason(plan), index=c))))
            continue
        for piece in split_chunks(plan.text):
            logprobs = _logprobs([piece], options)
            events.append(StreamEvent(_sse(chunk({"content": piece}, index=c, logprobs=logprobs)), content=True))
        for i, call in enumerate(plan.tool_calls):
            head = {
                "index": i,
                "id": _call_id(plan, i, c),
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            events.append(StreamEvent(_sse(chunk({"tool_calls": [head]}, index=c)), content=True))
            for piece in json_fragments(arguments_json(call)):
                delta = {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                events.append(StreamEvent(_sse(chunk(delta, index=c)), content=True))
        events.append(StreamEvent(_sse(chunk({}, _finish_reason(plan), index=c))))
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
