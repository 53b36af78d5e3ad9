"""Gemini API (generativelanguage v1beta) wire format: parsing, bodies, SSE chunks, errors.

What the fake speaks, in the real REST format:
- ``generationConfig.candidateCount`` n: n candidates (``index`` 0..n-1, the same scripted answer), the
  usage's ``candidatesTokenCount`` counting all of them;
- reasoning: ``Reply.reasoning`` comes back as ``{"text": ..., "thought": true}`` parts only when the
  request set ``thinkingConfig.includeThoughts`` (as the real service does); a reasoning reply (or
  ``reasoning_tokens``) makes it a thinking model whose first function call, or last text part, carries a
  ``thoughtSignature``; ``usageMetadata.thoughtsTokenCount`` is ``reasoning_tokens`` (else the reasoning's
  word count);
- ``cachedContentTokenCount`` from ``Reply.cached_input_tokens`` (part of ``promptTokenCount``, as Gemini
  counts it; Gemini reports no cache writes);
- ``responseLogprobs`` (+ ``logprobs`` k): a ``logprobsResult`` (``chosenCandidates``, ``topCandidates``) and
  ``avgLogprobs`` per candidate;
- ``Reply.refusal``: a safety stop (``finishReason: SAFETY``, no content, a blocked safety rating);
- streams are always SSE (``data: {...}\\r\\n\\r\\n``, no terminator); clients ask with ``alt=sse``, which the
  recorded request's ``query`` shows.
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.scripts import (
    ParsedRequest,
    Plan,
    StreamEvent,
    WireError,
    content_text,
    split_chunks,
    word_count,
)

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


@dataclass(frozen=True)
class GeminiRequest(ParsedRequest):
    """What the fake reads from a ``GenerateContentRequest`` beyond the vendor-neutral fields."""

    candidate_count: int = 1
    include_thoughts: bool = False
    response_logprobs: bool = False
    top_logprobs: int = 0


# ``completion(plan)`` is called without the parsed request (tests/fakes/player.py); ``parse`` runs in the
# same asyncio task as the reply, so the request's options reach ``completion`` through this variable.
_CURRENT: contextvars.ContextVar[GeminiRequest | None] = contextvars.ContextVar("gemini_request", default=None)
_DEFAULT = GeminiRequest(model="", stream=False, last_user_text="", input_text="")


def split_target(target: str) -> tuple[str, str]:
    """Split the ``{model}:{method}`` path segment, e.g. ``gemini-2.0-flash:generateContent``."""
    model, _, method = target.rpartition(":")
    return model, method


def _field(obj: Mapping[str, Any], camel: str) -> Any:
    """A request field by its JSON name or its proto name: Google's parser accepts both spellings (the
    ``google-genai`` SDK sends some nested fields, e.g. ``include_thoughts``, in snake case)."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse(body: Mapping[str, Any], model: str, stream: bool) -> GeminiRequest:
    """Extract text from ``contents`` and ``systemInstruction`` (model/stream come from the path) and the
    generation options the fake honours."""
    system = _field(body, "systemInstruction") or {}
    texts = [content_text(system.get("parts") if isinstance(system, dict) else system)]
    last_user = ""
    for content in body.get("contents") or []:
        text = content_text(content.get("parts"))
        texts.append(text)
        if content.get("role", "user") == "user" and text:
            last_user = text
    config = _field(body, "generationConfig") or {}
    thinking = _field(config, "thinkingConfig") or {}
    parsed = GeminiRequest(
        model=model,
        stream=stream,
        last_user_text=last_user,
        input_text=" ".join(t for t in texts if t),
        candidate_count=max(1, _int(_field(config, "candidateCount"), 1)),
        include_thoughts=_field(thinking, "includeThoughts") is True,
        response_logprobs=_field(config, "responseLogprobs") is True,
        top_logprobs=max(0, _int(config.get("logprobs"), 0)),
    )
    _CURRENT.set(parsed)
    return parsed


def api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """``x-goog-api-key`` header, else the ``key`` query parameter."""
    return headers.get("x-goog-api-key") or query.get("key")


def response_headers() -> dict[str, str]:
    """Gemini adds nothing the fake needs to imitate."""
    return {}


def _options(parsed: ParsedRequest | None) -> GeminiRequest:
    if isinstance(parsed, GeminiRequest):
        return parsed
    return _CURRENT.get() or _DEFAULT


def _finish_reason(plan: Plan) -> str:
    if plan.refusal:
        return "SAFETY"
    return "MAX_TOKENS" if plan.truncated else "STOP"


def thoughts_tokens(plan: Plan) -> int:
    """The thinking tokens the fake reports."""
    return plan.reasoning_tokens or (word_count(plan.reasoning) if plan.reasoning else 0)


def thought_signature(plan: Plan) -> str | None:
    """The base64 ``thoughtSignature`` a thinking model attaches (None for a non-thinking reply)."""
    if not (plan.reasoning or plan.reasoning_tokens):
        return None
    return base64.b64encode(f"fake-thought-signature:{plan.ident}".encode()).decode()


def _usage(plan: Plan, final: bool, candidates: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": plan.input_tokens}
    output = plan.output_tokens * candidates if final else 0
    thoughts = thoughts_tokens(plan) if final else 0
    if final:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = plan.input_tokens + output + thoughts
    if plan.cached_input_tokens:
        usage["cachedContentTokenCount"] = plan.cached_input_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.input_tokens}]
    if plan.cached_input_tokens:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.cached_input_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def logprobs_result(text: str, top: int) -> tuple[dict[str, Any], float]:
    """A ``logprobsResult`` for ``text`` (its word chunks as tokens) and the average log probability."""
    chosen: list[dict[str, Any]] = []
    tops: list[dict[str, Any]] = []
    for i, token in enumerate(split_chunks(text)):
        value = -0.05 * (i % 4 + 1)
        chosen.append({"token": token, "tokenId": 1000 + i, "logProbability": value})
        if top:
            alternatives = [{"token": token, "tokenId": 1000 + i, "logProbability": value}]
            alternatives += [
                {"token": f"alt{k}", "tokenId": 9000 + k, "logProbability": value - k} for k in range(1, top)
            ]
            tops.append({"candidates": alternatives})
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if top:
        result["topCandidates"] = tops
    average = sum(c["logProbability"] for c in chosen) / len(chosen) if chosen else 0.0
    return result, average


def _candidate(
    index: int, parts: list[dict[str, Any]], finish: str | None, text: str, options: GeminiRequest
) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    if finish:
        candidate["finishReason"] = finish
    if finish == "SAFETY":
        candidate["safetyRatings"] = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ]
    if options.response_logprobs and text:
        result, average = logprobs_result(text, options.top_logprobs)
        candidate["avgLogprobs"] = average
        candidate["logprobsResult"] = result
    candidate["index"] = index
    return candidate


def _response(plan: Plan, candidates: list[dict[str, Any]], final: bool) -> dict[str, Any]:
    return {
        "candidates": candidates,
        "usageMetadata": _usage(plan, final, len(candidates)),
        "modelVersion": plan.model,
        "responseId": plan.ident,
    }


def _call_parts(plan: Plan) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"functionCall": {"name": c["name"], "args": c.get("arguments") or {}}} for c in plan.tool_calls
    ]
    signature = thought_signature(plan)
    if parts and signature:
        parts[0]["thoughtSignature"] = signature  # Gemini signs the first call of a turn
    return parts


def _thought_parts(plan: Plan, options: GeminiRequest) -> list[dict[str, Any]]:
    if not (plan.reasoning and options.include_thoughts):
        return []
    return [{"text": plan.reasoning, "thought": True}]


def completion(plan: Plan, parsed: ParsedRequest | None = None) -> dict[str, Any]:
    """A non-streaming ``GenerateContentResponse``."""
    options = _options(parsed)
    finish = _finish_reason(plan)
    candidates = []
    for index in range(options.candidate_count):
        if plan.refusal:
            candidates.append(_candidate(index, [], finish, "", options))
            continue
        parts = _thought_parts(plan, options)
        text_parts: list[dict[str, Any]] = [{"text": plan.text}] if plan.text or not plan.tool_calls else []
        signature = thought_signature(plan)
        if text_parts and signature and not plan.tool_calls:
            text_parts[-1]["thoughtSignature"] = signature
        parts += text_parts + _call_parts(plan)
        candidates.append(_candidate(index, parts, finish, plan.text, options))
    return _response(plan, candidates, final=True)


def _sse(payload: Mapping[str, Any]) -> bytes:
    # The real service frames alt=sse events with CRLF line endings.
    return f"data: {json.dumps(payload, separators=(',', ':'))}\r\n\r\n".encode()


def _event(plan: Plan, options: GeminiRequest, parts: list[dict[str, Any]], text: str = "") -> bytes:
    candidates = [_candidate(i, parts, None, text, options) for i in range(options.candidate_count)]
    return _sse(_response(plan, candidates, final=False))


def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
    """Thought chunks, one ``GenerateContentResponse`` per word chunk / function call, then a final chunk
    carrying ``finishReason`` and complete ``usageMetadata`` (earlier chunks only have the prompt count,
    as the real service does). There is no terminator event."""
    options = _options(parsed)
    events: list[StreamEvent] = []
    if not plan.refusal:
        events += [StreamEvent(_event(plan, options, [part]), content=True) for part in _thought_parts(plan, options)]
        events += [
            StreamEvent(_event(plan, options, [{"text": piece}], piece), content=True)
            for piece in split_chunks(plan.text)
        ]
        events += [StreamEvent(_event(plan, options, [part]), content=True) for part in _call_parts(plan)]
    finish = _finish_reason(plan)
    last: list[dict[str, Any]] = [] if plan.refusal else [{"text": ""}]
    signature = thought_signature(plan)
    if last and signature and not plan.tool_calls:
        last[0]["thoughtSignature"] = signature
    candidates = [_candidate(i, last, finish, "", options) for i in range(options.candidate_count)]
    events.append(StreamEvent(_sse(_response(plan, candidates, final=True))))
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
