"""Gemini API (generativelanguage v1beta) wire format: parsing, bodies, SSE chunks, errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.fakes.scripts import ParsedRequest, Plan, StreamEvent, WireError, content_text, split_chunks

VENDOR = "google"
SSE_MEDIA_TYPE = "text/event-stream"

_STATUSES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    501: ("UNIMPLEMENTED", "Method not implemented."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


def split_target(target: str) -> tuple[str, str]:
    """Split the ``{model}:{method}`` path segment, e.g. ``gemini-2.0-flash:generateContent``."""
    model, _, method = target.rpartition(":")
    return model, method


def parse(body: Mapping[str, Any], model: str, stream: bool) -> ParsedRequest:
    """Extract text from ``contents`` and ``systemInstruction`` (model/stream come from the path)."""
    system = body.get("systemInstruction") or body.get("system_instruction") or {}
    texts = [content_text(system.get("parts") if isinstance(system, dict) else system)]
    last_user = ""
    for content in body.get("contents") or []:
        text = content_text(content.get("parts"))
        texts.append(text)
        if content.get("role", "user") == "user" and text:
            last_user = text
    return ParsedRequest(
        model=model,
        stream=stream,
        last_user_text=last_user,
        input_text=" ".join(t for t in texts if t),
    )


def api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """``x-goog-api-key`` header, else the ``key`` query parameter."""
    return headers.get("x-goog-api-key") or query.get("key")


def response_headers() -> dict[str, str]:
    """Gemini adds nothing the fake needs to imitate."""
    return {}


def _finish_reason(plan: Plan) -> str:
    return "MAX_TOKENS" if plan.truncated else "STOP"


def _usage(plan: Plan, final: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": plan.input_tokens}
    if final:
        usage["candidatesTokenCount"] = plan.output_tokens
    usage["totalTokenCount"] = plan.total_tokens if final else plan.input_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.input_tokens}]
    return usage


def _response(plan: Plan, parts: list[dict[str, Any]], finish: str | None, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(plan, final),
        "modelVersion": plan.model,
        "responseId": plan.ident,
    }


def _call_parts(plan: Plan) -> list[dict[str, Any]]:
    return [{"functionCall": {"name": c["name"], "args": c.get("arguments") or {}}} for c in plan.tool_calls]


def completion(plan: Plan) -> dict[str, Any]:
    """A non-streaming ``GenerateContentResponse``."""
    parts: list[dict[str, Any]] = [{"text": plan.text}] if plan.text or not plan.tool_calls else []
    return _response(plan, parts + _call_parts(plan), _finish_reason(plan), final=True)


def _sse(payload: Mapping[str, Any]) -> bytes:
    # The real service frames alt=sse events with CRLF line endings.
    return f"data: {json.dumps(payload, separators=(',', ':'))}\r\n\r\n".encode()


def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
    """One ``GenerateContentResponse`` per word chunk / function call, then a final chunk
    carrying ``finishReason`` and complete ``usageMetadata`` (earlier chunks only have the
    prompt count, as the real service does). There is no terminator event."""
    events = [
        StreamEvent(_sse(_response(plan, [{"text": piece}], None, final=False)), content=True)
        for piece in split_chunks(plan.text)
    ]
    events += [
        StreamEvent(_sse(_response(plan, [part], None, final=False)), content=True) for part in _call_parts(plan)
    ]
    events.append(StreamEvent(_sse(_response(plan, [{"text": ""}], _finish_reason(plan), final=True))))
    return events


def error(status: int, message: str | None = None) -> WireError:
    """The ``{"error": {code, message, status}}`` body for an HTTP status."""
    default = ("INTERNAL", "Internal error encountered.") if status >= 500 else ("INVALID_ARGUMENT", "Bad request.")
    grpc_status, default_message = _STATUSES.get(status, default)
    body = {"error": {"code": status, "message": message or default_message, "status": grpc_status}}
    return WireError(status=status, body=body)


def stream_error(status: int, message: str | None = None) -> bytes:
    """An in-stream ``data: {"error": ...}`` event (sent with HTTP 200 after some chunks)."""
    return _sse(error(status, message).body)


def auth_error(key: str | None) -> WireError:
    """What the real API sends for a bad key: HTTP 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
    if not key:
        return error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    wire = error(400, "API key not valid. Please pass a valid API key.")
    wire.body["error"]["details"] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ]
    return wire
