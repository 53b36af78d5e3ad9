"""OpenAI chat messages at the edge: the message model and its decoding into canonical ``Message``s.

Roles system, developer (as system), user, assistant and tool. User content parts: ``text`` (with an
Anthropic-style ``cache_control`` kept), ``image_url`` (an ``https:`` URL, or a ``data:`` URL decoded into
base64 data and its media type; ``detail`` kept), ``file`` (``file_data`` as a data URL or bare base64,
``file_id``, ``filename``); ``input_audio`` is refused by name. Assistant turns from stored histories may
carry the output-only ``refusal``, ``annotations``, ``audio: null``, ``function_call: null`` and fields such as
``reasoning_content``: accepted and ignored (a refused turn keeps its refusal as its text).
"""

from __future__ import annotations

import mimetypes
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain import ContentPart, FilePart, ImagePart, Message, TextPart, ToolCall
from app.errors import InvalidRequestError


class In(BaseModel):
    """Strict JSON types (``"0.5"`` is not a number); unknown nested fields are ignored (the pass-through
    keeps them)."""

    model_config = ConfigDict(extra="allow", strict=True)


class FunctionCallIn(In):
    name: str = Field(min_length=1, max_length=256)
    arguments: str = ""


class ToolCallIn(In):
    id: str = Field(min_length=1, max_length=1000)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class MessageIn(In):
    role: str
    content: Any = None  # a string or a list of parts, checked per role by the decoder
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=1024)
    tool_call_id: str | None = Field(default=None, max_length=1000)
    refusal: Any = None  # output-only: accepted back in history, ignored
    annotations: Any = None  # output-only
    audio: Any = None  # null, or a reference to an earlier audio answer (refused)
    function_call: Any = None  # legacy; null accepted


def bad(message: str, param: str | None, code: str = "invalid_value") -> InvalidRequestError:
    """A 400 ``invalid_request_error`` naming ``param``."""
    return InvalidRequestError(message, param=param, code=code)


ROLES = ("system", "developer", "user", "assistant", "tool")


def decode_message(index: int, m: MessageIn) -> Message:
    where = f"messages.{index}"
    role = m.role
    if role == "function":
        raise bad(
            f"{where}: the legacy 'function' role is not supported; use 'tool' messages",
            f"{where}.role",
            "unsupported_value",
        )
    if role not in ROLES:
        raise bad(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}", f"{where}.role")
    if role == "assistant":
        return _assistant(where, m)
    allowed = ("text", "image_url", "file") if role == "user" else ("text",)
    text, parts = _content(m.content, where, allowed)
    if role == "tool":
        if not m.tool_call_id:
            raise bad(
                f"{where}: a tool message needs tool_call_id", f"{where}.tool_call_id", "missing_required_parameter"
            )
        return Message("tool", text, tool_call_id=m.tool_call_id, parts=parts)
    return Message("user" if role == "user" else "system", text, name=m.name, parts=parts)


def _assistant(where: str, m: MessageIn) -> Message:
    if isinstance(m.audio, dict) and m.audio.get("id") is not None:
        raise bad(f"{where}.audio: audio answers are not supported", f"{where}.audio", "unsupported_parameter")
    if m.function_call is not None:
        raise bad(
            f"{where}: the legacy 'function_call' is not supported; use 'tool_calls'",
            f"{where}.function_call",
            "unsupported_parameter",
        )
    text, parts = _content(m.content, where, ("text", "refusal"))
    calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ())
    if not text and not parts and not calls:  # a refused turn: what the model said was its refusal
        text = _refusal_text(m)
    return Message("assistant", text, tool_calls=calls, name=m.name, parts=parts)


def _refusal_text(m: MessageIn) -> str:
    if isinstance(m.refusal, str):
        return m.refusal
    if isinstance(m.content, list):
        return "".join(p["refusal"] for p in m.content if isinstance(p, dict) and isinstance(p.get("refusal"), str))
    return ""


def _content(content: Any, where: str, allowed: tuple[str, ...]) -> tuple[str, tuple[ContentPart, ...]]:
    """The text and the parts (kept only when they are more than one plain text)."""
    if content is None or isinstance(content, str):
        return content or "", ()
    if not isinstance(content, list):
        raise bad(
            f"{where}.content: expected a string or an array of content parts", f"{where}.content", "invalid_type"
        )
    parts: list[ContentPart] = []
    for j, raw in enumerate(content):
        part = _part(raw, f"{where}.content.{j}", allowed)
        if part is not None:
            parts.append(part)
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    if len(parts) == 1 and isinstance(parts[0], TextPart) and parts[0].cache_control is None:
        return text, ()
    return text, tuple(parts)


def _part(raw: Any, at: str, allowed: tuple[str, ...]) -> ContentPart | None:
    if not isinstance(raw, dict):
        raise bad(f"{at}: a content part is an object", at, "invalid_type")
    kind = raw.get("type")
    if kind not in allowed:
        if kind == "input_audio":
            raise bad(
                f"{at}: input_audio content parts are not supported (no audio input)", f"{at}.type", "unsupported_value"
            )
        raise bad(
            f"{at}: content part type {kind!r} is not supported here (expected {', '.join(allowed)})", f"{at}.type"
        )
    if kind == "refusal":
        return None  # an earlier answer's refusal: output-only
    if kind == "text":
        text, cache = raw.get("text"), raw.get("cache_control")
        if not isinstance(text, str):
            raise bad(f"{at}.text: expected a string", f"{at}.text", "invalid_type")
        return TextPart(text, cache if isinstance(cache, dict) else None)
    if kind == "image_url":
        return _image(raw.get("image_url"), f"{at}.image_url")
    return _file(raw.get("file"), f"{at}.file")


def _data_url(url: str, at: str) -> tuple[str, str]:
    """``data:<media type>;base64,<data>`` -> (media type, data)."""
    head, sep, data = url.partition(",")
    media_type, _, encoding = head.removeprefix("data:").partition(";")
    if not sep or encoding.lower() != "base64" or not data:
        raise bad(f"{at}: a data URL must be data:<media type>;base64,<data>", at)
    return media_type.strip().lower(), data


def _image(spec: Any, at: str) -> ImagePart:
    if isinstance(spec, str):  # a shorthand some clients send
        spec = {"url": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise bad(f"{at}.url: expected an image URL", f"{at}.url", "missing_required_parameter")
    url, detail = spec["url"], spec.get("detail")
    if detail is not None and detail not in ("auto", "low", "high"):
        raise bad(f"{at}.detail: expected auto, low or high", f"{at}.detail")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{at}.url")
        if not media_type.startswith("image/"):
            raise bad(f"{at}.url: {media_type or 'no media type'} is not an image", f"{at}.url")
        return ImagePart(data=data, media_type=media_type, detail=detail)
    if not url.startswith(("https://", "http://")):
        raise bad(f"{at}.url: expected an https: or data: URL", f"{at}.url")
    return ImagePart(url=url, detail=detail)


def _file(spec: Any, at: str) -> FilePart:
    if not isinstance(spec, dict):
        raise bad(f"{at}: expected an object with file_data or file_id", at, "missing_required_parameter")
    data, file_id, filename = spec.get("file_data"), spec.get("file_id"), spec.get("filename")
    for name, value in (("file_data", data), ("file_id", file_id), ("filename", filename)):
        if value is not None and not isinstance(value, str):
            raise bad(f"{at}.{name}: expected a string", f"{at}.{name}", "invalid_type")
    if data:
        if data.startswith("data:"):
            media_type, data = _data_url(data, f"{at}.file_data")
        else:  # bare base64: the type from the file name
            media_type = (mimetypes.guess_type(filename)[0] if filename else None) or "application/pdf"
        return FilePart(data=data, media_type=media_type, filename=filename)
    if file_id:
        return FilePart(file_id=file_id, filename=filename)
    raise bad(f"{at}: a file part needs file_data or file_id", f"{at}.file_data", "missing_required_parameter")
