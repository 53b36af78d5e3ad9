"""Canonical request -> Anthropic Messages request body (pure). The codec is ``app.providers.anthropic``.

- ``system``: every system message, as text blocks (one plain string when it is a single block without a
  cache breakpoint); the other turns alternate user/assistant (neighbours merged, tool results first in a
  user turn, as Anthropic requires).
- images -> ``image`` blocks (``base64`` with the media type, or ``url``); PDFs -> ``document`` blocks;
  an assistant's reasoning -> ``thinking`` / ``redacted_thinking`` blocks, only when it is Anthropic's own
  (a signature from another vendor means nothing here and is dropped).
- ``response_format`` ``json_schema`` -> structured outputs ``output_config.format`` (generally available,
  no beta header; the earlier beta spelling was ``output_format`` with ``structured-outputs-2025-11-13``).
  The schema is adapted to what constrained decoding accepts (see ``strict_schema``). ``json_object``
  cannot be a structured output (Anthropic demands ``additionalProperties: false`` on every object schema,
  so "any JSON object" cannot be written as one): it is Anthropic's documented JSON mode instead, one forced
  tool (``JSON_OBJECT_TOOL``) whose input is the answer; the decoders turn that tool call back into the
  answer's text (``json_object_mode``). Beside tools of the request's own it is refused (the forced tool
  would keep the model from calling them).
- reasoning effort -> ``thinking.budget_tokens`` through ``THINKING_BUDGETS``; see ``to_anthropic_body``
  for what thinking changes in the sampling options and ``max_tokens``.
- ``seed``, penalties, ``logprobs`` and ``logit_bias`` do not exist in the Messages API: refused.
- ``user`` (or ``metadata["user_id"]``) -> ``metadata.user_id``, the only metadata Anthropic takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from app.domain import (
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    Reasoning,
    ReasoningPart,
    TextPart,
    ToolSpec,
)
from app.errors import InvalidRequestError
from app.providers.base import ModelTarget
from app.providers.codec_util import tool_arguments

KIND = "anthropic"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when the client sets none
MIN_THINKING_BUDGET = 1024  # the smallest budget_tokens Anthropic accepts
# reasoning effort -> thinking budget_tokens; "none" turns thinking off
THINKING_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32000}
MIN_THINKING_TOP_P = 0.95  # with thinking on, Anthropic takes top_p only in [0.95, 1]


# --- tools -------------------------------------------------------------------------------------------

JSON_OBJECT_NAME = "json_object"
# The tool of JSON mode: forced, so the answer is its input, a JSON object of any shape.
JSON_OBJECT_TOOL: dict[str, Any] = {
    "name": JSON_OBJECT_NAME,
    "description": "Give the answer as a JSON object.",
    "input_schema": {"type": "object"},
}
# one call exactly (a second object would make the answer's text two JSON values)
JSON_OBJECT_CHOICE: dict[str, Any] = {"type": "tool", "name": JSON_OBJECT_NAME, "disable_parallel_tool_use": True}


def json_object_mode(request: ChatRequest) -> bool:
    """Whether the request asks for any JSON object (``response_format`` ``json_object``) without tools of
    its own: then the answer comes as a call of ``JSON_OBJECT_TOOL``, which the decoders make the answer's
    text. (A pass-through request is the client's own Messages body; the codec does not ask this for it.)"""
    fmt = request.response_format
    return fmt is not None and fmt.type == "json_object" and not request.tools


def to_anthropic_tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI ``tool_choice`` in Anthropic's form."""
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}.get(
            choice, {"type": "auto"}
        )
    name = (choice.get("function") or {}).get("name") or choice.get("name")
    return {"type": "tool", "name": name} if name else {"type": "auto"}


_TOOL_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


def anthropic_tool_id(call_id: str | None) -> str:
    """A tool call id as Anthropic accepts it (``^[a-zA-Z0-9_-]+$``): other characters become ``_``, the
    same way for a ``tool_use`` and its ``tool_result``."""
    return _TOOL_ID_INVALID.sub("_", call_id or "") or "toolu_unknown"


# JSON Schema keywords Anthropic's constrained decoding understands (structured outputs, strict tools);
# any other keyword of a schema node moves into its description, where the model may still follow it.
_SCHEMA_KEYWORDS = frozenset(
    {"type", "description", "title", "enum", "const", "default", "anyOf", "allOf", "$ref", "$defs",
     "definitions", "properties", "required", "additionalProperties", "items", "pattern"}
)  # fmt: skip
_SCHEMA_DROPPED = frozenset({"$schema", "$id", "$comment"})  # annotations, no constraint
_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)


def strict_schema(schema: Any) -> Any:
    """``schema`` adapted to Anthropic's structured outputs: every object gets ``additionalProperties:
    false`` (mandatory there), ``oneOf`` becomes ``anyOf``, and constraints it does not support
    (``minimum``, ``maxLength``, ``minItems`` above 1, unknown formats, ...) are appended to the node's
    description instead of failing the request."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf", "allOf", "items"):
            out["anyOf" if key == "oneOf" else key] = strict_schema(value)
        elif (key == "format" and value in _STRING_FORMATS) or (key == "minItems" and value in (0, 1)):
            out[key] = value
        elif key == "additionalProperties" or key in _SCHEMA_DROPPED:
            continue
        elif key in _SCHEMA_KEYWORDS:
            out[key] = value
        else:
            extra[key] = value
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
    if extra:
        note = "{" + ", ".join(f"{key}: {orjson.dumps(value).decode()}" for key, value in extra.items()) + "}"
        out["description"] = f"{out['description']}\n\n{note}" if out.get("description") else note
    return out


def to_anthropic_tool(tool: ToolSpec) -> dict[str, Any]:
    """A ``ToolSpec`` as an Anthropic client tool (``input_schema`` must be an object schema); a strict tool
    carries ``strict: true`` and a schema that constrained decoding accepts."""
    schema = tool.parameters or {"type": "object", "properties": {}}
    out: dict[str, Any] = {"name": tool.name, "input_schema": strict_schema(schema) if tool.strict else schema}
    if tool.description:
        out["description"] = tool.description
    if tool.strict:
        out["strict"] = True
    return out


# --- content -----------------------------------------------------------------------------------------

# base64 openings of the image formats Anthropic accepts, for inline images sent without a media type
_IMAGE_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def _invalid(message: str, param: str = "messages") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, provider=KIND)


def _data_url(url: str, where: str) -> tuple[str, str]:
    """Media type and base64 data of a ``data:`` URL."""
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        raise _invalid(f"{where}: a data URL must be base64-encoded")
    return media_type, data


def _image_block(part: ImagePart, where: str) -> dict[str, Any]:
    if part.data is not None:
        media_type = part.media_type or next((m for p, m in _IMAGE_MAGIC if part.data.startswith(p)), "")
        data = part.data
    elif part.url and part.url.startswith("data:"):
        media_type, data = _data_url(part.url, where)
    elif part.url:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    else:
        raise _invalid(f"{where}: an image part has neither data nor a URL")
    if not media_type:
        raise _invalid(f"{where}: an inline image needs its media type")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document_block(part: FilePart, where: str) -> dict[str, Any]:
    if part.file_id is not None:
        raise _invalid(f"{where}: {KIND} cannot read a file by id; send the file's data")
    if part.data is not None:
        media_type, data = part.media_type or "application/pdf", part.data
    elif part.url and part.url.startswith("data:"):
        media_type, data = _data_url(part.url, where)
    elif part.url:
        media_type, data = part.media_type or "application/pdf", ""
    else:
        raise _invalid(f"{where}: a file part has neither data nor a URL")
    if media_type != "application/pdf":
        raise _invalid(f"{where}: {KIND} reads PDF documents, not {media_type}")
    source = {"type": "base64", "media_type": media_type, "data": data} if data else {"type": "url", "url": part.url}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        block["title"] = part.filename
    return block


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _part_blocks(parts: tuple[ContentPart, ...], where: str, *, media: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        if isinstance(part, TextPart):
            if part.text:
                blocks.append(_text_block(part))
        elif not media:
            raise _invalid(f"{where}.content[{j}]: only user and tool messages can carry images or files")
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part, f"{where}.content[{j}]"))
        else:
            blocks.append(_document_block(part, f"{where}.content[{j}]"))
    return blocks


def _own_reasoning(part: ReasoningPart) -> bool:
    """Whether a reasoning part can go back to Anthropic: its own, signed (another vendor's signature, or
    unsigned text, would be refused)."""
    return bool(part.signature) and part.provider in ("anthropic", None)


def _reasoning_blocks(message: Message) -> list[dict[str, Any]]:
    return [
        {"type": "redacted_thinking", "data": part.signature}
        if part.redacted
        else {"type": "thinking", "thinking": part.text, "signature": part.signature}
        for part in message.reasoning
        if _own_reasoning(part)
    ]


def _content_blocks(message: Message, where: str) -> list[dict[str, Any]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": anthropic_tool_id(message.tool_call_id)}
        if message.has_media or any(isinstance(p, TextPart) and p.cache_control for p in message.parts):
            result["content"] = _part_blocks(message.parts, where, media=True)
        else:
            result["content"] = message.content
        if message.is_error:
            result["is_error"] = True
        return [result]
    if message.role == "user":
        return _part_blocks(message.content_parts, where, media=True)
    blocks = _reasoning_blocks(message) + _part_blocks(message.content_parts, where, media=False)
    for call in message.tool_calls:
        use = {"type": "tool_use", "id": anthropic_tool_id(call.id), "name": call.name}
        blocks.append({**use, "input": tool_arguments(call.arguments)})
    return blocks


def to_anthropic_system(messages: tuple[Message, ...]) -> str | list[dict[str, Any]] | None:
    """Every system message's text as ``system``: one string, or text blocks when there are several or a
    block carries a cache breakpoint."""
    blocks: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role == "system":
            blocks += _part_blocks(message.content_parts, f"messages[{i}]", media=False)
    if not blocks:
        return None
    if len(blocks) == 1 and "cache_control" not in blocks[0]:
        return str(blocks[0]["text"])
    return blocks


def to_anthropic_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The alternating user/assistant turns (tool results are user turns; system messages go to
    ``to_anthropic_system``)."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _content_blocks(message, f"messages[{i}]") or [{"type": "text", "text": ""}]
        if out and out[-1]["role"] == role:
            # Anthropic wants alternating turns: merge neighbours, tool results first in a user turn.
            merged = out[-1]["content"] + blocks
            out[-1]["content"] = sorted(merged, key=lambda b: b["type"] != "tool_result")
        else:
            out.append({"role": role, "content": blocks})
    return out


# --- request -----------------------------------------------------------------------------------------

_UNSUPPORTED: tuple[tuple[str, Callable[[ChatRequest], bool]], ...] = (
    ("seed", lambda r: r.seed is not None),
    ("presence_penalty", lambda r: bool(r.presence_penalty)),  # 0 is no penalty
    ("frequency_penalty", lambda r: bool(r.frequency_penalty)),
    ("logprobs", lambda r: bool(r.logprobs or r.top_logprobs)),
    ("logit_bias", lambda r: bool(r.logit_bias)),
)


def _unsigned_tool_turn(messages: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn calls tools but does not start with a thinking block."""
    last: list[dict[str, Any]] = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), [])
    calls = any(b["type"] == "tool_use" for b in last)
    return calls and last[0]["type"] not in ("thinking", "redacted_thinking")


def thinking_budget(reasoning: Reasoning | None) -> int | None:
    """Anthropic's ``budget_tokens`` for a reasoning request (None: no thinking). An explicit budget wins
    (at least ``MIN_THINKING_BUDGET``; 0 turns thinking off); an effort maps through ``THINKING_BUDGETS``."""
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None:
        return max(MIN_THINKING_BUDGET, reasoning.budget_tokens) if reasoning.budget_tokens > 0 else None
    return THINKING_BUDGETS.get(reasoning.effort or "none")


def to_anthropic_body(request: ChatRequest, target: ModelTarget, *, stream: bool) -> dict[str, Any]:
    """The Messages request body.

    With thinking on, Anthropic refuses ``temperature`` (other than 1), ``top_k``, ``top_p`` below 0.95 and
    a forced tool choice: the sampling options are dropped (thinking decides them), and a forced tool
    choice (``required``, a named tool, or JSON mode's tool) turns thinking off, since it changes what the
    answer is. Thinking is also off when the last assistant turn called tools without its thinking block (a
    client that does not carry reasoning back, as OpenAI's chat protocol does not): Anthropic refuses that
    history.
    ``max_tokens`` must exceed the thinking budget: when it does not, it becomes budget + 4096.
    """
    for param, present in _UNSUPPORTED:
        if present(request):
            raise _invalid(f"{KIND} does not support {param}", param=param)
    json_mode = json_object_mode(request)
    if request.tools and request.response_format is not None and request.response_format.type == "json_object":
        raise _invalid(
            f"{KIND} gives JSON mode (response_format json_object) as a forced tool of its own, which cannot go "
            "with the request's tools; use json_schema, or drop the tools",
            param="response_format",
        )
    body: dict[str, Any] = {"model": target.upstream_model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    system = to_anthropic_system(request.messages)
    if system:
        body["system"] = system
    body["messages"] = to_anthropic_messages(request.messages)
    choice = to_anthropic_tool_choice(request.tool_choice) if request.tools else None
    if json_mode:
        choice = dict(JSON_OBJECT_CHOICE)  # forced: thinking goes off below
    budget = thinking_budget(request.reasoning)
    if (choice is not None and choice["type"] in ("any", "tool")) or _unsigned_tool_turn(body["messages"]):
        budget = None
    if budget is None:
        sampling = (("temperature", request.temperature), ("top_p", request.top_p), ("top_k", request.top_k))
        body.update((k, v) for k, v in sampling if v is not None)
    else:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if body["max_tokens"] <= budget:
            body["max_tokens"] = budget + DEFAULT_MAX_TOKENS
        if request.top_p is not None and request.top_p >= MIN_THINKING_TOP_P:
            body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [to_anthropic_tool(t) for t in request.tools]
        if request.parallel_tool_calls is False and (choice is None or choice["type"] != "none"):
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            body["tool_choice"] = choice
    elif json_mode:
        body["tools"] = [dict(JSON_OBJECT_TOOL)]
        body["tool_choice"] = choice
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        if not isinstance(fmt.schema, dict):
            raise _invalid("response_format json_schema needs a schema object", param="response_format")
        body["output_config"] = {"format": {"type": "json_schema", "schema": strict_schema(fmt.schema)}}
    user_id = request.user or request.metadata.get("user_id")
    if user_id:
        body["metadata"] = {"user_id": user_id}
    if stream:
        body["stream"] = True
    return body
