"""Responses API items at the edge: ``input`` items into canonical ``Message``s, and an answer's reasoning
into reasoning items.

Items: messages (roles user, system, developer as system, assistant; parts ``input_text``, ``input_image``
by URL, ``data:`` URL or file id, ``input_file`` by inline data, URL or file id; an assistant's
``output_text`` and ``refusal``), ``function_call`` and ``function_call_output``, and ``reasoning`` items.
Consecutive reasoning, assistant message and function call items are one assistant turn, as every vendor
wants them. Other item types (``item_reference``, built-in tool calls...) and images by OpenAI file id have
no canonical form: they are named in ``foreign_items`` and only an OpenAI upstream (which takes the body as
sent) can serve them.

Reasoning made by another vendor travels in ``encrypted_content`` as Switchyard's own envelope
(``GATEWAY_REASONING`` prefix: the vendor, its signature, whether it was redacted); OpenAI's own encrypted
content is kept as OpenAI's.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.domain import ContentPart, FilePart, ImagePart, Message, ReasoningPart, TextPart, ToolCall
from app.records import record
from app.schemas.openai_content import bad

GATEWAY_REASONING = "swy1."  # encrypted_content made by Switchyard (another vendor's reasoning signature)
ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
CANONICAL_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})


def seal_reasoning(part: ReasoningPart) -> str | None:
    """The ``encrypted_content`` of a reasoning part: OpenAI's own as it came, another vendor's signature
    in Switchyard's envelope; None without a signature."""
    if not part.signature:
        return None
    if part.provider == "openai":
        return part.signature
    envelope = {"p": part.provider, "s": part.signature, "r": part.redacted}
    return GATEWAY_REASONING + base64.urlsafe_b64encode(orjson.dumps(envelope)).decode()


def open_reasoning(text: str, encrypted: str | None) -> ReasoningPart:
    """A reasoning item's canonical part (the inverse of ``seal_reasoning``)."""
    if encrypted and encrypted.startswith(GATEWAY_REASONING):
        try:
            envelope = orjson.loads(base64.urlsafe_b64decode(encrypted[len(GATEWAY_REASONING) :]))
        except (binascii.Error, ValueError):
            envelope = None
        if isinstance(envelope, dict) and isinstance(envelope.get("s"), str):
            provider = envelope.get("p")
            return ReasoningPart(
                text=text,
                signature=envelope["s"] or None,
                redacted=envelope.get("r") is True,
                provider=provider if isinstance(provider, str) else None,
            )
        return ReasoningPart(text=text, provider="unknown")  # a broken envelope: the text only
    return ReasoningPart(text=text, signature=encrypted or None, provider="openai")


@dataclass
class _Turn:
    """An assistant turn being assembled from consecutive items."""

    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[ReasoningPart] = field(default_factory=list)

    def message(self) -> Message:
        return Message("assistant", "".join(self.text), tool_calls=tuple(self.calls), reasoning=tuple(self.reasoning))


@record(slots=True)
class DecodedItems:
    messages: tuple[Message, ...]
    foreign_items: tuple[str, ...]  # item types without a canonical form (OpenAI upstreams only)


def decode_items(items: list[Any], where: str = "input") -> DecodedItems:
    """The canonical messages of Responses input items; a 400 names the item and field of a bad one."""
    messages: list[Message] = []
    foreign: list[str] = []
    turn: _Turn | None = None

    def close() -> None:
        nonlocal turn
        if turn is not None:
            messages.append(turn.message())
            turn = None

    for i, item in enumerate(items):
        at = f"{where}.{i}"
        if not isinstance(item, dict):
            raise bad(f"{at}: an input item is an object", at, "invalid_type")
        kind = item.get("type", "message")
        if kind not in CANONICAL_ITEMS:
            foreign.append(str(kind)[:64])
            continue
        if kind == "message" and item.get("role") != "assistant":
            close()
            messages.append(_message(item, at, foreign))
            continue
        if kind == "function_call_output":
            close()
            messages.append(_call_output(item, at, foreign))
            continue
        turn = turn or _Turn()
        if kind == "reasoning":
            if turn.text or turn.calls:  # reasoning starts the next assistant turn
                close()
                turn = _Turn()
            turn.reasoning.append(_reasoning(item, at))
        elif kind == "function_call":
            turn.calls.append(_call(item, at))
        else:
            if turn.calls:
                close()
                turn = _Turn()
            turn.text.append(_assistant_text(item, at))
    close()
    return DecodedItems(tuple(messages), tuple(dict.fromkeys(foreign)))


def _string(item: dict[str, Any], name: str, at: str, *, required: bool = True) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        code = "missing_required_parameter" if value is None else "invalid_type"
        raise bad(f"{at}.{name}: expected a non-empty string", f"{at}.{name}", code)
    return value


def _message(item: dict[str, Any], at: str, foreign: list[str]) -> Message:
    role = ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise bad(f"{at}.role: {item.get('role')!r} is not one of user, system, developer, assistant", f"{at}.role")
    content = item.get("content")
    if isinstance(content, str):
        return Message(role, content)  # type: ignore[arg-type]
    if not isinstance(content, list):
        raise bad(f"{at}.content: expected a string or an array of content parts", f"{at}.content", "invalid_type")
    found = (_part(p, f"{at}.content.{j}", foreign, media=role == "user") for j, p in enumerate(content))
    parts = [p for p in found if p is not None]
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    if all(isinstance(p, TextPart) for p in parts):
        return Message(role, text)  # type: ignore[arg-type]
    return Message(role, text, parts=tuple(parts))  # type: ignore[arg-type]


def _part(raw: Any, at: str, foreign: list[str], *, media: bool) -> ContentPart | None:
    """One content part; None for one only OpenAI can read (named in ``foreign``)."""
    if not isinstance(raw, dict):
        raise bad(f"{at}: a content part is an object", at, "invalid_type")
    kind = raw.get("type")
    if kind in ("input_text", "output_text", "text"):
        return TextPart(_string(raw, "text", at, required=False))
    if kind in ("input_image", "input_file") and not media:
        raise bad(f"{at}: only user messages can carry {kind} parts", f"{at}.type", "unsupported_value")
    if kind == "input_image":
        return _image(raw, at, foreign)
    if kind == "input_file":
        return _file(raw, at)
    if kind == "input_audio":
        raise bad(f"{at}: input_audio parts are not supported (no audio input)", f"{at}.type", "unsupported_value")
    raise bad(f"{at}.type: content part type {kind!r} is not supported", f"{at}.type", "unsupported_value")


def _data_url(url: str, at: str) -> tuple[str, str]:
    head, sep, data = url.partition(",")
    media_type, _, encoding = head.removeprefix("data:").partition(";")
    if not sep or encoding.lower() != "base64" or not data:
        raise bad(f"{at}: a data URL must be data:<media type>;base64,<data>", at)
    return media_type.strip().lower(), data


def _image(raw: dict[str, Any], at: str, foreign: list[str]) -> ImagePart | None:
    detail = raw.get("detail")
    if detail is not None and detail not in ("auto", "low", "high"):
        raise bad(f"{at}.detail: expected auto, low or high", f"{at}.detail")
    url = raw.get("image_url")
    if isinstance(url, str) and url.startswith("data:"):
        media_type, data = _data_url(url, f"{at}.image_url")
        if not media_type.startswith("image/"):
            raise bad(f"{at}.image_url: {media_type or 'no media type'} is not an image", f"{at}.image_url")
        return ImagePart(data=data, media_type=media_type, detail=detail)
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return ImagePart(url=url, detail=detail)
    if url is not None:
        raise bad(f"{at}.image_url: expected an https: or data: URL", f"{at}.image_url")
    if isinstance(raw.get("file_id"), str) and raw["file_id"]:
        foreign.append("input_image file_id")  # an OpenAI file: only OpenAI can read it
        return None
    raise bad(f"{at}: an input_image needs image_url or file_id", f"{at}.image_url", "missing_required_parameter")


def _file(raw: dict[str, Any], at: str) -> FilePart:
    data, file_id, url = raw.get("file_data"), raw.get("file_id"), raw.get("file_url")
    filename = raw.get("filename") if isinstance(raw.get("filename"), str) else None
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            media_type, data = _data_url(data, f"{at}.file_data")
        else:
            media_type = (mimetypes.guess_type(filename)[0] if filename else None) or "application/pdf"
        return FilePart(data=data, media_type=media_type, filename=filename)
    if isinstance(file_id, str) and file_id:
        return FilePart(file_id=file_id, filename=filename)
    if isinstance(url, str) and url:
        return FilePart(url=url, filename=filename)
    raise bad(
        f"{at}: an input_file needs file_data, file_id or file_url", f"{at}.file_data", "missing_required_parameter"
    )


def _assistant_text(item: dict[str, Any], at: str) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(f"{at}.content: expected a string or an array of content parts", f"{at}.content", "invalid_type")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise bad(f"{at}.content.{j}: a content part is an object", f"{at}.content.{j}", "invalid_type")
        for key in ("text", "refusal"):
            if isinstance(part.get(key), str):
                texts.append(part[key])
    return "".join(texts)


def _call(item: dict[str, Any], at: str) -> ToolCall:
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        raise bad(f"{at}.arguments: expected a JSON string", f"{at}.arguments", "invalid_type")
    return ToolCall(_string(item, "call_id", at), _string(item, "name", at), arguments or "{}")


def _call_output(item: dict[str, Any], at: str, foreign: list[str]) -> Message:
    call_id = _string(item, "call_id", at)
    output = item.get("output")
    if isinstance(output, str):
        return Message("tool", output, tool_call_id=call_id)
    if not isinstance(output, list):
        raise bad(f"{at}.output: expected a string or an array of content parts", f"{at}.output", "invalid_type")
    found = (_part(p, f"{at}.output.{j}", foreign, media=True) for j, p in enumerate(output))
    parts = [p for p in found if p is not None]
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    if all(isinstance(p, TextPart) for p in parts):
        return Message("tool", text, tool_call_id=call_id)
    return Message("tool", text, tool_call_id=call_id, parts=tuple(parts))


def _reasoning(item: dict[str, Any], at: str) -> ReasoningPart:
    texts: list[str] = []
    for key in ("content", "summary"):
        value = item.get(key)
        if value is not None and not isinstance(value, list):
            raise bad(f"{at}.{key}: expected an array", f"{at}.{key}", "invalid_type")
        texts += [p["text"] for p in value or () if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if texts:
            break  # the full reasoning text when there is one, else its summary
    encrypted = item.get("encrypted_content")
    if encrypted is not None and not isinstance(encrypted, str):
        raise bad(f"{at}.encrypted_content: expected a string", f"{at}.encrypted_content", "invalid_type")
    return open_reasoning("\n\n".join(texts), encrypted)
