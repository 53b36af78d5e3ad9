"""Anthropic Messages content at the edge: ``system`` and ``messages`` blocks decoded into canonical
``Message``s.

``system``: a string or text blocks (``cache_control`` kept on each part). User turns: ``text``, ``image``
(``base64`` with its media type, or ``url``), ``document`` (a base64 or URL PDF; a plain-text or
content-block document becomes its text), ``tool_result`` (string or blocks, ``is_error``; each result
becomes a canonical ``tool`` message ahead of the turn's other content, as the canonical form keeps tool
results apart). Assistant turns: ``text``, ``tool_use`` (``input`` as the call's JSON arguments),
``thinking`` (with its ``signature``) and ``redacted_thinking`` as reasoning signed by Anthropic, or by
another vendor when the gateway signed it (``app.providers.anthropic_thinking``).

Blocks only an Anthropic upstream understands (server tool calls and their results, MCP blocks, files by
id, container uploads, search results) are not refused here: they are listed in ``Content.anthropic_only``
so that routing keeps the request on Anthropic upstreams (which get the client's body as it is) and a
translated target is refused with a 400 that names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.domain import ContentPart, FilePart, ImagePart, Message, ReasoningPart, TextPart, ToolCall
from app.errors import InvalidRequestError
from app.providers.anthropic_thinking import open_signature

ANTHROPIC = "anthropic"
ANTHROPIC_ONLY_BLOCKS = frozenset(
    {"server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
     "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result",
     "mcp_tool_use", "mcp_tool_result", "container_upload", "search_result"}
)  # fmt: skip


def bad(message: str, param: str | None) -> InvalidRequestError:
    """A 400 ``invalid_request_error`` naming ``param``."""
    return InvalidRequestError(message, param=param, code="invalid_value")


@dataclass
class Content:
    """What decoding the content found: the canonical messages, and the Anthropic-only blocks by place."""

    messages: list[Message] = field(default_factory=list)
    anthropic_only: list[str] = field(default_factory=list)
    cache_control: bool = False  # some block carries a cache breakpoint (ignored by translated targets)


def _str(value: Any, at: str) -> str:
    if not isinstance(value, str):
        raise bad(f"{at}: expected a string", at)
    return value


def _blocks(content: Any, at: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise bad(f"{at}: expected a string or an array of content blocks", at)
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise bad(f"{at}.{j}: a content block is an object with a type", f"{at}.{j}")
    return content


def _text_part(block: dict[str, Any], at: str, found: Content) -> TextPart:
    cache = block.get("cache_control")
    if cache is not None:
        found.cache_control = True
    return TextPart(_str(block.get("text"), f"{at}.text"), cache if isinstance(cache, dict) else None)


def _image(block: dict[str, Any], at: str, found: Content) -> ImagePart | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        assert isinstance(source, dict)
        media_type = _str(source.get("media_type"), f"{at}.source.media_type")
        return ImagePart(data=_str(source.get("data"), f"{at}.source.data"), media_type=media_type)
    if kind == "url":
        assert isinstance(source, dict)
        return ImagePart(url=_str(source.get("url"), f"{at}.source.url"))
    if kind == "file":
        found.anthropic_only.append(f"{at} (image by file_id)")
        return None
    raise bad(f"{at}.source: an image source is base64, url or file", f"{at}.source")


def _document(block: dict[str, Any], at: str, found: Content) -> ContentPart | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if not isinstance(source, dict):
        raise bad(f"{at}.source: a document needs a source", f"{at}.source")
    if kind == "base64":
        media_type = _str(source.get("media_type"), f"{at}.source.media_type")
        return FilePart(data=_str(source.get("data"), f"{at}.source.data"), media_type=media_type, filename=title)
    if kind == "url":
        return FilePart(url=_str(source.get("url"), f"{at}.source.url"), media_type="application/pdf", filename=title)
    if kind == "text":
        return TextPart(_str(source.get("data"), f"{at}.source.data"))
    if kind == "content":
        inner = _blocks(source.get("content"), f"{at}.source.content")
        return TextPart("\n".join(str(b.get("text", "")) for b in inner if b.get("type") == "text"))
    if kind == "file":
        found.anthropic_only.append(f"{at} (document by file_id)")
        return None
    raise bad(f"{at}.source: a document source is base64, url, text, content or file", f"{at}.source")


def _user_parts(blocks: list[dict[str, Any]], at: str, found: Content, *, results: bool) -> list[ContentPart]:
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        where, kind = f"{at}.{j}", block["type"]
        found.cache_control = found.cache_control or block.get("cache_control") is not None
        part: ContentPart | None
        if kind == "text":
            part = _text_part(block, where, found)
        elif kind == "image":
            part = _image(block, where, found)
        elif kind == "document":
            part = _document(block, where, found)
        elif kind in ANTHROPIC_ONLY_BLOCKS:
            found.anthropic_only.append(f"{where} ({kind})")
            part = None
        elif kind == "tool_result" and results:
            continue  # taken apart by the caller
        else:
            raise bad(f"{where}: content block type {kind!r} is not allowed here", f"{where}.type")
        if part is not None:
            if isinstance(part, TextPart) and block.get("cache_control") is not None and part.cache_control is None:
                part = TextPart(part.text, block["cache_control"])
            parts.append(part)
    return parts


def _message(role: str, parts: list[ContentPart], **fields: Any) -> Message:
    """A canonical message: its text, and its parts when they are more than one plain text."""
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    keep = len(parts) > 1 or any(not isinstance(p, TextPart) or p.cache_control for p in parts)
    return Message(role, text, parts=tuple(parts) if keep else (), **fields)  # type: ignore[arg-type]


def _tool_result(block: dict[str, Any], at: str, found: Content, names: dict[str, str]) -> Message:
    call_id = _str(block.get("tool_use_id"), f"{at}.tool_use_id")
    raw = block.get("content")
    parts = _user_parts(_blocks(raw, f"{at}.content"), f"{at}.content", found, results=False) if raw else []
    if block.get("cache_control") is not None:
        found.cache_control = True
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise bad(f"{at}.is_error: expected a boolean", f"{at}.is_error")
    return _message("tool", parts, tool_call_id=call_id, name=names.get(call_id), is_error=bool(is_error))


def _reasoning(text: str, signature: str | None, *, redacted: bool) -> ReasoningPart:
    """A thinking block's reasoning: Anthropic's own, or another vendor's under a gateway-made signature
    (``app.providers.anthropic_thinking``), given back to that vendor."""
    foreign = open_signature(signature) if signature else None
    if foreign is None:
        return ReasoningPart(text, signature or None, redacted=redacted, provider=ANTHROPIC)
    return ReasoningPart(text, foreign.signature, redacted=foreign.redacted, provider=foreign.provider)


def _assistant(blocks: list[dict[str, Any]], at: str, found: Content, names: dict[str, str]) -> Message:
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningPart] = []
    for j, block in enumerate(blocks):
        where, kind = f"{at}.{j}", block["type"]
        found.cache_control = found.cache_control or block.get("cache_control") is not None
        if kind == "text":
            parts.append(_text_part(block, where, found))
        elif kind == "tool_use":
            call_id, name = _str(block.get("id"), f"{where}.id"), _str(block.get("name"), f"{where}.name")
            arguments = block.get("input")
            if arguments is not None and not isinstance(arguments, dict):
                raise bad(f"{where}.input: expected an object", f"{where}.input")
            names[call_id] = name
            calls.append(ToolCall(call_id, name, orjson.dumps(arguments or {}).decode()))
        elif kind == "thinking":
            signature = block.get("signature")
            text = _str(block.get("thinking"), f"{where}.thinking")
            reasoning.append(_reasoning(text, signature if isinstance(signature, str) else None, redacted=False))
        elif kind == "redacted_thinking":
            data = _str(block.get("data"), f"{where}.data")
            reasoning.append(_reasoning("", data, redacted=True))
        elif kind in ANTHROPIC_ONLY_BLOCKS:
            found.anthropic_only.append(f"{where} ({kind})")
        else:
            raise bad(f"{where}: content block type {kind!r} is not allowed in an assistant turn", f"{where}.type")
    return _message("assistant", parts, tool_calls=tuple(calls), reasoning=tuple(reasoning))


def decode_system(system: Any, found: Content) -> None:
    if system is None or system == "" or system == []:
        return
    blocks = _blocks(system, "system")
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        if block["type"] != "text":
            raise bad(f"system.{j}: system blocks are text blocks", f"system.{j}.type")
        parts.append(_text_part(block, f"system.{j}", found))
    found.messages.append(_message("system", parts))


def decode_messages(messages: list[Any], found: Content) -> None:
    """The turns in canonical form (into ``found``)."""
    names: dict[str, str] = {}  # tool_use id -> tool name, for the results
    for i, raw in enumerate(messages):
        at = f"messages.{i}"
        if not isinstance(raw, dict):
            raise bad(f"{at}: a message is an object with role and content", at)
        role = raw.get("role")
        if role not in ("user", "assistant"):
            raise bad(f"{at}.role: expected user or assistant", f"{at}.role")
        if "content" not in raw:
            raise InvalidRequestError(f"{at}.content: Field required", param=f"{at}.content", code="missing")
        blocks = _blocks(raw["content"], f"{at}.content")
        if role == "assistant":
            found.messages.append(_assistant(blocks, f"{at}.content", found, names))
            continue
        for j, block in enumerate(blocks):
            if block["type"] == "tool_result":
                found.messages.append(_tool_result(block, f"{at}.content.{j}", found, names))
        parts = _user_parts(blocks, f"{at}.content", found, results=True)
        if parts or not any(b["type"] == "tool_result" for b in blocks):
            found.messages.append(_message("user", parts))
