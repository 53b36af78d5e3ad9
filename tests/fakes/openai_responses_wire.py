"""OpenAI Responses API wire format (``POST /v1/responses``): request parsing, ``response`` objects, the SSE
event sequence (``event:`` lines, ``sequence_number`` from 0) and errors (OpenAI's ``{"error": {...}}``).

Output items in OpenAI's order: ``reasoning`` (``Reply.reasoning`` as its summary; ``encrypted_content`` when
the request includes ``reasoning.encrypted_content``), the ``message`` (``output_text``, or a ``refusal``
part), then ``function_call`` items. A truncated reply is ``status: incomplete`` (``max_output_tokens``). An
in-stream failure is ``response.failed``. The request's settings are echoed as OpenAI does.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes import openai_wire
from tests.fakes.scripts import (
    ParsedRequest,
    Plan,
    StreamEvent,
    arguments_json,
    content_text,
    json_fragments,
    split_chunks,
)

VENDOR = "openai"
SSE_MEDIA_TYPE = openai_wire.SSE_MEDIA_TYPE
api_key = openai_wire.api_key
response_headers = openai_wire.response_headers
error = openai_wire.error
auth_error = openai_wire.auth_error


@dataclass(frozen=True)
class ResponsesParsedRequest(ParsedRequest):
    body: Mapping[str, Any] | None = None

    @property
    def encrypted(self) -> bool:
        return "reasoning.encrypted_content" in (self.body or {}).get("include", ())


_CURRENT: contextvars.ContextVar[ResponsesParsedRequest | None] = contextvars.ContextVar("responses", default=None)


def _item_text(item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    if item.get("type") == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else content_text(output)
    if item.get("type") == "function_call":
        return f"{item.get('name', '')} {item.get('arguments', '')}"
    return content_text(item.get("content"))


def parse(body: Mapping[str, Any]) -> ResponsesParsedRequest:
    """Model, stream flag and texts of a Responses request (``input`` a string or items)."""
    raw = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    last_user = ""
    texts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    for item in items:
        text = _item_text(item)
        texts.append(text)
        if isinstance(item, dict) and item.get("role") == "user":
            last_user = text
    parsed = ResponsesParsedRequest(
        model=str(body.get("model", "")),
        stream=bool(body.get("stream")),
        last_user_text=last_user,
        input_text=" ".join(t for t in texts if t),
        body=dict(body),
    )
    _CURRENT.set(parsed)
    return parsed


def _usage(plan: Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_input_tokens},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.total_tokens,
    }


def _items(plan: Plan, parsed: ResponsesParsedRequest | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if plan.reasoning is not None:
        reasoning: dict[str, Any] = {
            "id": f"rs_{plan.ident}",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": plan.reasoning}],
        }
        if parsed is not None and parsed.encrypted:
            reasoning["encrypted_content"] = f"gAAAAB-fake-encrypted-{plan.ident}"
        items.append(reasoning)
    if plan.refusal is not None or plan.text or not plan.tool_calls:
        part: dict[str, Any] = (
            {"type": "refusal", "refusal": plan.refusal}
            if plan.refusal is not None
            else {"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []}
        )
        items.append(
            {
                "id": f"msg_{plan.ident}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    if plan.refusal is None:
        for i, call in enumerate(plan.tool_calls):
            items.append(
                {
                    "id": f"fc_{plan.ident}{i}",
                    "type": "function_call",
                    "status": "completed",
                    "arguments": arguments_json(call),
                    "call_id": f"call_{plan.ident[:16]}{i}",
                    "name": call["name"],
                }
            )
    return items


def _response(plan: Plan, parsed: ResponsesParsedRequest | None, status: str, output: list[Any]) -> dict[str, Any]:
    body = dict(parsed.body or {}) if parsed is not None else {}
    done = status != "in_progress"
    return {
        "id": f"resp_{plan.ident}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _usage(plan) if done else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def completion(plan: Plan, parsed: ParsedRequest | None = None) -> dict[str, Any]:
    """A non-streamed ``response`` object."""
    options = parsed if isinstance(parsed, ResponsesParsedRequest) else _CURRENT.get()
    return _response(plan, options, "incomplete" if plan.truncated else "completed", _items(plan, options))


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
    """The full event sequence of one answer."""
    options = parsed if isinstance(parsed, ResponsesParsedRequest) else _CURRENT.get()
    events: list[StreamEvent] = []

    def emit(kind: str, content: bool = False, **fields: Any) -> None:
        body = {"type": kind, "sequence_number": len(events), **fields}
        events.append(StreamEvent(_sse(kind, body), content=content))

    emit("response.created", response=_response(plan, options, "in_progress", []))
    emit("response.in_progress", response=_response(plan, options, "in_progress", []))
    items = _items(plan, options)
    for index, item in enumerate(items):
        ids = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            text = item["summary"][0]["text"]
            emit(
                "response.reasoning_summary_part.added",
                **ids,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
            for piece in split_chunks(text):
                emit("response.reasoning_summary_text.delta", True, **ids, summary_index=0, delta=piece)
            emit("response.reasoning_summary_text.done", **ids, summary_index=0, text=text)
            emit(
                "response.reasoning_summary_part.done",
                **ids,
                summary_index=0,
                part={"type": "summary_text", "text": text},
            )
        elif item["type"] == "message":
            emit(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            part = item["content"][0]
            kind, key = ("refusal", "refusal") if part["type"] == "refusal" else ("output_text", "text")
            emit("response.content_part.added", **ids, content_index=0, part={**part, key: ""})
            for piece in split_chunks(part[key]):
                extra = {} if kind == "refusal" else {"logprobs": []}
                emit(f"response.{kind}.delta", True, **ids, content_index=0, delta=piece, **extra)
            done = {key: part[key]} if kind == "refusal" else {"text": part["text"], "logprobs": []}
            emit(f"response.{kind}.done", **ids, content_index=0, **done)
            emit("response.content_part.done", **ids, content_index=0, part=part)
        else:
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in json_fragments(item["arguments"]):
                emit("response.function_call_arguments.delta", True, **ids, delta=piece)
            emit("response.function_call_arguments.done", **ids, arguments=item["arguments"], name=item["name"])
        emit("response.output_item.done", output_index=index, item=item)
    final = completion(plan, options)
    emit(f"response.{final['status']}", response=final)
    return events


def stream_error(status: int, message: str | None = None) -> bytes:
    """``response.failed`` (sent with HTTP 200 after some events)."""
    code = "rate_limit_exceeded" if status == 429 else "server_error"
    text = message or error(status).body["error"]["message"]
    response = {"id": "resp_failed", "object": "response", "status": "failed", "output": []}
    response["error"] = {"code": code, "message": text}
    return _sse("response.failed", {"type": "response.failed", "sequence_number": 9999, "response": response})
