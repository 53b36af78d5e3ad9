"""OpenAI Responses API answers at the edge: a canonical ``Completion`` as a ``response`` object (pure; ids
and times are passed in or made here).

Output items in the order the model produced them: ``reasoning`` (its text as the summary, the signature as
``encrypted_content`` when the client included ``reasoning.encrypted_content``; see
``app.schemas.responses_items.seal_reasoning``), the assistant ``message`` (``output_text``, or a
``refusal`` part), then one ``function_call`` per tool call (``call_id`` is the canonical tool call id;
``namespace`` for a function of a ``namespace`` tool). A ``length`` finish is ``status: incomplete`` with
``incomplete_details.reason: max_output_tokens``, a content filter ``reason: content_filter``. ``usage`` has
``input_tokens_details.cached_tokens`` and ``output_tokens_details.reasoning_tokens``. The request's
settings are echoed as OpenAI does; ``switchyard`` is Switchyard's extension object (provider, cost,
route), ignored by OpenAI clients.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from app.domain import Completion, ReasoningPart, ToolCall, Usage
from app.errors import GatewayError
from app.schemas.responses_items import seal_reasoning
from app.schemas.responses_request import DecodedResponses

GATEWAY_ID = "_sy"  # ids the gateway makes: ``msg_sy<hex>``, ``rs_sy<hex>``... (not OpenAI's own)


def new_id(prefix: str) -> str:
    return f"{prefix}{GATEWAY_ID}{uuid.uuid4().hex}"


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """The response ``status`` and ``incomplete_details`` of a finish reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def reasoning_item(part: ReasoningPart, ident: str, *, encrypted: bool, done: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {"id": ident, "type": "reasoning", "summary": []}
    if done and part.text and not part.redacted:
        item["summary"] = [{"type": "summary_text", "text": part.text}]
    if encrypted and done:
        item["encrypted_content"] = seal_reasoning(part)
    return item


def message_item(ident: str, text: str, refusal: str | None, *, done: bool = True, cut: bool = False) -> dict[str, Any]:
    """An assistant ``message`` item (``cut``: the answer stopped at its token limit or a filter, so the
    item is ``incomplete``, as OpenAI marks it)."""
    content: list[dict[str, Any]] = []
    if done:
        if refusal:
            content.append({"type": "refusal", "refusal": refusal})
        else:
            content.append(text_part(text))
    status = ("incomplete" if cut else "completed") if done else "in_progress"
    return {"id": ident, "type": "message", "status": status, "role": "assistant", "content": content}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call: ToolCall, ident: str, *, done: bool = True, namespace: str | None = None) -> dict[str, Any]:
    """A ``function_call`` item (``namespace``: the namespace tool the function belongs to)."""
    item = {
        "id": ident,
        "type": "function_call",
        "status": "completed" if done else "in_progress",
        "arguments": call.arguments if done else "",
        "call_id": call.id,
        "name": call.name,
    }
    if namespace is not None:
        item["namespace"] = namespace
    return item


def output_items(
    completion: Completion, *, encrypted: bool, namespaces: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The output items of a translated answer."""
    items = [reasoning_item(p, new_id("rs"), encrypted=encrypted) for p in completion.reasoning]
    if completion.content or completion.refusal or not completion.tool_calls:
        cut = status_of(completion.finish_reason)[0] == "incomplete"
        items.append(message_item(new_id("msg"), completion.content, completion.refusal, cut=cut))
    spaces = namespaces or {}
    items += [call_item(c, new_id("fc"), namespace=spaces.get(c.name)) for c in completion.tool_calls]
    return items


def error_object(exc: GatewayError) -> dict[str, Any]:
    """A failed response's ``error`` (OpenAI's codes: ``rate_limit_exceeded`` or ``server_error``)."""
    code = "rate_limit_exceeded" if exc.status_code == 429 else "server_error"
    return {"code": code, "message": exc.message}


def response_body(
    decoded: DecodedResponses,
    *,
    ident: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    incomplete: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object with the request's settings echoed."""
    body = decoded.body
    text = body.text.model_dump(by_alias=True, exclude_none=True) if body.text is not None else {}
    reasoning = body.reasoning.model_dump(exclude_none=True) if body.reasoning is not None else {}
    out: dict[str, Any] = {
        "id": ident,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "model": model,
        "output": output,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": body.service_tier,
        "store": decoded.store,
        "temperature": body.temperature,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
        "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
        "tools": body.tools or [],
        "top_p": body.top_p,
        "truncation": body.truncation or "disabled",
        "usage": usage_body(usage) if usage is not None else None,
        "user": body.user,
        "metadata": dict(body.metadata or {}),
    }
    if extra is not None:
        out["switchyard"] = extra
    return out


def completion_response(
    decoded: DecodedResponses, completion: Completion, *, ident: str, created_at: int, extra: dict[str, Any]
) -> dict[str, Any]:
    """The ``response`` object of a translated, non-streamed answer."""
    status, incomplete = status_of(completion.finish_reason)
    return response_body(
        decoded,
        ident=ident,
        created_at=created_at,
        model=completion.model,
        status=status,
        output=output_items(completion, encrypted=decoded.encrypted_reasoning, namespaces=decoded.namespaces),
        usage=completion.usage,
        incomplete=incomplete,
        extra=extra,
    )
