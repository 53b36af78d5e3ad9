"""Anthropic Messages API wire format: request parsing, bodies, SSE events, errors.

What the fake speaks, in the real format:
- ``Reply.reasoning``: a ``thinking`` block (with a ``signature``) before the answer; streamed as
  ``thinking_delta`` events closed by one ``signature_delta``. (The fake does not check that the request
  enabled thinking.)
- ``Reply.refusal``: ``stop_reason: "refusal"`` with the refusal text as the message's text.
- ``Reply.cached_input_tokens`` / ``cache_write_tokens``: ``cache_read_input_tokens`` /
  ``cache_creation_input_tokens`` (with ``cache_creation.ephemeral_5m_input_tokens``); Anthropic's
  ``input_tokens`` counts neither, so it is the plan's input tokens minus both.
- ``Reply.reasoning_tokens`` (else the reasoning's word count, when there is reasoning):
  ``usage.output_tokens_details.thinking_tokens``; Anthropic's ``output_tokens`` includes them, so it is the
  plan's output tokens (the answer) plus the thinking tokens.
- structured outputs (``output_config.format``): the answer is the scripted text, as a plain text block.
- like Anthropic, the fake checks the signatures of the ``thinking`` blocks (and the data of the
  ``redacted_thinking`` blocks) a request carries back: one it did not make is a 400
  (``check_signatures``). ``REDACTED_REASONING`` as ``Reply.reasoning`` answers a ``redacted_thinking``
  block (data of the fake's own) instead of a ``thinking`` block.
- a forced tool named ``json_object`` (``tool_choice: {"type": "tool", "name": "json_object"}``, the
  gateway's JSON mode) with a scripted text that is a JSON object and no scripted tool calls: the answer is
  a ``tool_use`` of that tool whose ``input`` is the parsed text (no text block, stop ``tool_use``), as
  Anthropic answers a forced tool. Other forced tools are not looked at (the scripted reply is the answer).
"""

from __future__ import annotations

import base64
import json
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
    word_count,
)

VENDOR = "anthropic"
SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


JSON_OBJECT_TOOL = "json_object"


class _Model(str):
    """The requested model name, carrying the name of the tool the request forces. ``completion`` gets
    only the plan, whose ``model`` is the parsed request's: this is how the forced tool reaches it."""

    forced_tool: str | None = None


def _forced_tool(body: Mapping[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return str(choice["name"])
    return None


SIGNATURE_MARK = b"fake-thinking-signature:"
REDACTED_REASONING = "<redacted>"  # as Reply.reasoning: a redacted_thinking block


def _ours(value: object) -> bool:
    """Whether a signature (or redacted data) is one the fake made (base64 of ``SIGNATURE_MARK`` + id)."""
    if not isinstance(value, str):
        return False
    try:
        return base64.b64decode(value, validate=True).startswith(SIGNATURE_MARK)
    except ValueError:
        return False


def check_signatures(messages: object) -> None:
    """Anthropic's check of the reasoning a request carries back: ``ValueError`` (a 400) for a ``thinking``
    block whose signature, or a ``redacted_thinking`` block whose data, the fake did not make."""
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "thinking" and not _ours(block.get("signature")):
                raise ValueError(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
            if kind == "redacted_thinking" and not _ours(block.get("data")):
                raise ValueError(f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block")


def parse(body: Mapping[str, Any]) -> ParsedRequest:
    """Extract model, stream flag and text (``system`` + messages) from a Messages request; a request
    carrying reasoning the fake did not sign is refused (``check_signatures``)."""
    check_signatures(body.get("messages"))
    model = _Model(body.get("model", ""))
    model.forced_tool = _forced_tool(body)
    texts = [content_text(body.get("system"))]
    last_user = ""
    for message in body.get("messages") or []:
        text = content_text(message.get("content"))
        texts.append(text)
        if message.get("role") == "user":
            last_user = text
    return ParsedRequest(
        model=model,
        stream=bool(body.get("stream")),
        last_user_text=last_user,
        input_text=" ".join(t for t in texts if t),
    )


def api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """``x-api-key``, or a bearer token (OAuth-style auth)."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def response_headers() -> dict[str, str]:
    """Headers Anthropic puts on every response."""
    return {"request-id": _request_id()}


def _json_answer(plan: Plan) -> dict[str, Any] | None:
    """The input of the ``json_object`` tool call that answers the plan, when the request forces that tool
    and the scripted text is a JSON object (None otherwise: the plan is answered as scripted)."""
    if getattr(plan.model, "forced_tool", None) != JSON_OBJECT_TOOL or plan.tool_calls or plan.refusal is not None:
        return None
    try:
        value = json.loads(plan.text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tool_calls(plan: Plan) -> list[dict[str, Any]]:
    """The tool calls the answer makes: the scripted ones, or the ``json_object`` call of JSON mode."""
    answer = _json_answer(plan)
    return [{"name": JSON_OBJECT_TOOL, "arguments": answer}] if answer is not None else plan.tool_calls


def _stop_reason(plan: Plan) -> str:
    if plan.refusal is not None:
        return "refusal"
    if plan.truncated:
        return "max_tokens"
    return "tool_use" if _tool_calls(plan) else "end_turn"


def _tool_id(plan: Plan, index: int) -> str:
    return f"toolu_{plan.ident[:20]}{index}"


def signature(plan: Plan) -> str:
    """The (opaque, base64) signature of the plan's thinking block."""
    return base64.b64encode(f"fake-thinking-signature:{plan.ident}".encode()).decode()


def _text(plan: Plan) -> str:
    return plan.refusal if plan.refusal is not None else plan.text


def _blocks(plan: Plan) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.reasoning == REDACTED_REASONING:
        blocks.append({"type": "redacted_thinking", "data": signature(plan)})
    elif plan.reasoning is not None:
        blocks.append({"type": "thinking", "thinking": plan.reasoning, "signature": signature(plan)})
    calls = _tool_calls(plan)
    if (_text(plan) or not calls) and calls is plan.tool_calls:
        blocks.append({"type": "text", "text": _text(plan)})
    for i, call in enumerate(calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(plan, i),
                "name": call["name"],
                "input": call.get("arguments") or {},
            }
        )
    return blocks


def _thinking_tokens(plan: Plan) -> int:
    return plan.reasoning_tokens or (word_count(plan.reasoning) if plan.reasoning else 0)


def _final_usage(plan: Plan) -> dict[str, Any]:
    """``output_tokens`` (answer and thinking) and ``output_tokens_details`` of the finished message."""
    thinking = _thinking_tokens(plan)
    details = {"output_tokens_details": {"thinking_tokens": thinking}} if thinking else {}
    return {"output_tokens": plan.output_tokens + thinking, **details}


def _usage(plan: Plan, output_tokens: int | None) -> dict[str, Any]:
    """The usage object; ``output_tokens`` None: the finished message's."""
    usage: dict[str, Any] = {
        "input_tokens": max(0, plan.input_tokens - plan.cached_input_tokens - plan.cache_write_tokens),
        "cache_creation_input_tokens": plan.cache_write_tokens,
        "cache_read_input_tokens": plan.cached_input_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": plan.cache_write_tokens, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    return usage if output_tokens is not None else {**usage, **_final_usage(plan)}


def _message(plan: Plan, content: list[dict[str, Any]], stop: str | None, output_tokens: int | None) -> dict[str, Any]:
    return {
        "id": f"msg_{plan.ident}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(plan, output_tokens),
    }


def completion(plan: Plan) -> dict[str, Any]:
    """A non-streaming ``message`` object."""
    return _message(plan, _blocks(plan), _stop_reason(plan), None)


def _sse(event: str, payload: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
    """message_start, per-block start/ping/deltas/stop, message_delta (usage), message_stop."""
    events = [StreamEvent(_sse("message_start", {"type": "message_start", "message": _message(plan, [], None, 1)}))]
    blocks = _blocks(plan)
    calls = _tool_calls(plan)
    first_tool = len(blocks) - len(calls)
    for index, block in enumerate(blocks):
        closing: list[dict[str, Any]] = []
        start: dict[str, Any]
        if block["type"] == "redacted_thinking":
            start, deltas = block, []  # whole in its start, as Anthropic streams it
        elif block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in split_chunks(block["thinking"])]
            closing = [{"type": "signature_delta", "signature": block["signature"]}]
        elif block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in split_chunks(block["text"])]
        else:
            start = {**block, "input": {}}
            call = calls[index - first_tool]
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": p} for p in json_fragments(arguments_json(call))]
        events.append(
            StreamEvent(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
        )
        if index == 0:
            events.append(StreamEvent(_sse("ping", {"type": "ping"})))
        for delta in deltas:
            payload = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(StreamEvent(_sse("content_block_delta", payload), content=True))
        for delta in closing:
            payload = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(StreamEvent(_sse("content_block_delta", payload)))
        events.append(StreamEvent(_sse("content_block_stop", {"type": "content_block_stop", "index": index})))
    events.append(
        StreamEvent(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _stop_reason(plan), "stop_sequence": None},
                    "usage": _final_usage(plan),
                },
            )
        )
    )
    events.append(StreamEvent(_sse("message_stop", {"type": "message_stop"})))
    return events


def error(status: int, message: str | None = None) -> WireError:
    """The ``{"type": "error", "error": {type, message}, "request_id"}`` body for a status."""
    default = ("api_error", "Internal server error") if status >= 500 else ("invalid_request_error", "Invalid request.")
    err_type, default_message = _ERRORS.get(status, default)
    request_id = _request_id()
    body = {
        "type": "error",
        "error": {"type": err_type, "message": message or default_message},
        "request_id": request_id,
    }
    return WireError(status=status, body=body, headers={"request-id": request_id})


def stream_error(status: int, message: str | None = None) -> bytes:
    """An ``event: error`` SSE event (sent with HTTP 200 after some chunks)."""
    body = error(status, message).body
    return _sse("error", {"type": "error", "error": body["error"]})


def auth_error(key: str | None) -> WireError:
    """The 401 Anthropic returns for a wrong or missing key."""
    return error(401, "invalid x-api-key" if key else "x-api-key header is required")
