"""Google Gemini through the official ``google-genai`` SDK (``generateContent``/``streamGenerateContent``)."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from google import genai
from google.genai import types

from app.domain import ChatRequest, Completion, Message, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.errors import UpstreamStreamError
from app.providers.base import ModelTarget, build_completion, normalize_finish_reason
from app.providers.errors import map_google_error
from app.providers.openai import tool_arguments

# The SDK retries dropped connections on its own when aiohttp is installed; retries belong to orchestration.
NO_RETRIES: dict[str, Any] = {"attempts": 1}


def _tool_names_by_id(messages: tuple[Message, ...]) -> dict[str, str]:
    return {call.id: call.name for m in messages for call in m.tool_calls}


SIGNATURE_MARK = "__ts_"  # separates a call id from the Gemini thought signature carried inside it


def encode_call_id(call_id: str | None, signature: bytes | None) -> str:
    """The id clients see for a Gemini function call. Gemini's thinking models require a call's
    ``thought_signature`` back with the call in the next turn; OpenAI-style clients only echo the id, so
    the signature travels inside it (URL-safe base64, valid in OpenAI and Anthropic ids alike)."""
    base = call_id or f"call_{uuid.uuid4().hex[:24]}"
    if not signature:
        return base
    return f"{base}{SIGNATURE_MARK}{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def decode_call_id(call_id: str) -> bytes | None:
    """The thought signature carried in a call id made by ``encode_call_id`` (None if there is none)."""
    _, mark, encoded = call_id.partition(SIGNATURE_MARK)
    if not mark or not encoded:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (ValueError, binascii.Error):
        return None


def to_function_response(content: str) -> dict[str, Any]:
    """A tool result as Gemini's ``response`` object: a JSON object result as is, anything else under the
    documented ``output`` key."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, ValueError):
        return {"output": content}
    return value if isinstance(value, dict) else {"output": value}


def to_gemini_contents(messages: tuple[Message, ...]) -> tuple[str | None, list[dict[str, Any]]]:
    """The ``system_instruction`` text and the ``contents`` list (roles ``user`` and ``model``)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    names = _tool_names_by_id(messages)
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        parts: list[dict[str, Any]] = []
        if message.role == "tool":
            name = message.name or names.get(message.tool_call_id or "", "tool")
            parts.append({"function_response": {"name": name, "response": to_function_response(message.content)}})
        else:
            if message.content:
                parts.append({"text": message.content})
            for call in message.tool_calls:
                part: dict[str, Any] = {"function_call": {"name": call.name, "args": tool_arguments(call.arguments)}}
                signature = decode_call_id(call.id)
                if signature is not None:
                    part["thought_signature"] = signature
                parts.append(part)
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts or [{"text": ""}])
        else:
            contents.append({"role": role, "parts": parts or [{"text": ""}]})
    return system, contents


def to_gemini_tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(choice, "AUTO")
        return {"function_calling_config": {"mode": mode}}
    name = (choice.get("function") or {}).get("name")
    return {"function_calling_config": {"mode": "ANY", "allowed_function_names": [name] if name else None}}


def to_gemini_request(request: ChatRequest, target: ModelTarget) -> dict[str, Any]:
    """Keyword arguments for ``client.aio.models.generate_content``."""
    system, contents = to_gemini_contents(request.messages)
    config: dict[str, Any] = {"http_options": {"timeout": int(target.timeout_s * 1000), "retry_options": NO_RETRIES}}
    if system:
        config["system_instruction"] = system
    if request.max_tokens is not None:
        config["max_output_tokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["top_p"] = request.top_p
    if request.stop:
        config["stop_sequences"] = list(request.stop)
    if request.tools:
        declarations = [
            {"name": t.name, "description": t.description, "parameters_json_schema": t.parameters or None}
            for t in request.tools
        ]
        config["tools"] = [{"function_declarations": declarations}]
        config["automatic_function_calling"] = {"disable": True}
        tool_config = to_gemini_tool_config(request.tool_choice)
        if tool_config is not None:
            config["tool_config"] = tool_config
    return {
        "model": target.upstream_model,
        "contents": contents,
        "config": types.GenerateContentConfig(**config),
    }


def _usage(metadata: Any) -> Usage | None:
    if metadata is None:
        return None
    return Usage(metadata.prompt_token_count or 0, metadata.candidates_token_count or 0)


def _parts(response: Any) -> list[Any]:
    candidates = response.candidates or []
    if not candidates or candidates[0].content is None:
        return []
    return list(candidates[0].content.parts or [])


def _finish(response: Any) -> str | None:
    candidates = response.candidates or []
    return normalize_finish_reason(candidates[0].finish_reason) if candidates else None


def from_gemini_response(
    response: Any, call_offset: int = 0
) -> tuple[str, Usage | None, str | None, tuple[ToolCall, ...]]:
    """Content, usage, finish reason and tool calls of a ``GenerateContentResponse``."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in _parts(response):
        if part.text and not part.thought:
            texts.append(part.text)
        if part.function_call is not None:
            call = part.function_call
            call_id = encode_call_id(call.id, part.thought_signature)
            calls.append(ToolCall(id=call_id, name=call.name or "", arguments=json.dumps(call.args or {})))
    finish = _finish(response)
    if calls and finish == "stop":
        finish = "tool_calls"
    return "".join(texts), _usage(response.usage_metadata), finish, tuple(calls)


class GoogleProvider:
    """``Provider`` over ``google.genai.Client`` (its async surface, ``client.aio``)."""

    kind = "google"

    def __init__(self, client: genai.Client, secrets: tuple[str, ...] = ()) -> None:
        self._client = client
        self._secrets = secrets

    @classmethod
    def create(cls, *, api_key: str | None, api_base: str | None, timeout_s: float) -> GoogleProvider:
        options: dict[str, Any] = {"timeout": int(timeout_s * 1000), "retry_options": NO_RETRIES}
        if api_base:
            options["base_url"] = api_base
        client = genai.Client(api_key=api_key, http_options=types.HttpOptions(**options))
        return cls(client, secrets=(api_key,) if api_key else ())

    def _error(self, exc: BaseException, target: ModelTarget) -> Exception:
        return map_google_error(exc, provider=self.kind, model=target.name, secrets=self._secrets)

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        started = time.perf_counter()
        try:
            response = await self._client.aio.models.generate_content(**to_gemini_request(request, target))
        except Exception as exc:  # SDK APIError, or the transport's (aiohttp or httpx) own classes
            raise self._error(exc, target) from exc
        content, usage, finish, calls = from_gemini_response(response)
        return build_completion(
            target,
            content=content,
            usage=usage or Usage(),
            started=started,
            finish_reason=finish,
            tool_calls=calls,
            upstream_model=getattr(response, "model_version", None),
        )

    async def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        usage: Usage | None = None
        finish: str | None = None
        calls_seen = 0
        upstream: Any = None
        try:
            upstream = await self._client.aio.models.generate_content_stream(
                **to_gemini_request(request, target)
            )
            async for response in upstream:
                text, chunk_usage, chunk_finish, calls = from_gemini_response(response, calls_seen)
                usage = chunk_usage or usage
                finish = chunk_finish or finish
                deltas = tuple(
                    ToolCallDelta(calls_seen + i, id=c.id, name=c.name, arguments=c.arguments)
                    for i, c in enumerate(calls)
                )
                calls_seen += len(calls)
                if text or deltas:
                    yield StreamChunk(delta=text, tool_calls=deltas)
        except Exception as exc:  # SDK APIError or the transport's own classes
            raise self._error(exc, target) from exc
        finally:
            if upstream is not None:
                await upstream.aclose()
        if finish is None:
            raise UpstreamStreamError(
                "the upstream stream ended before a finish reason", provider=self.kind, model=target.name
            )
        if calls_seen and finish == "stop":
            finish = "tool_calls"
        yield StreamChunk(finish_reason=finish, usage=usage or Usage())

    async def aclose(self) -> None:
        await self._client.aio.aclose()
