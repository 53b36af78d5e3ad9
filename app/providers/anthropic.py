"""Anthropic Messages API through the official ``anthropic`` SDK."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic

from app.domain import ChatRequest, Completion, Message, StreamChunk, ToolCall, ToolCallDelta, ToolSpec, Usage
from app.errors import UpstreamStreamError
from app.providers.base import ModelTarget, build_completion, normalize_finish_reason
from app.providers.errors import map_anthropic_error
from app.providers.http import sdk_http_client
from app.providers.openai import tool_arguments

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when the client sets none


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


def to_anthropic_tool(tool: ToolSpec) -> dict[str, Any]:
    """A ``ToolSpec`` as an Anthropic client tool (``input_schema`` must be an object schema)."""
    out: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters or {"type": "object", "properties": {}}}
    if tool.description:
        out["description"] = tool.description
    return out


def _content_blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        result = {"type": "tool_result", "tool_use_id": anthropic_tool_id(message.tool_call_id)}
        return [{**result, "content": message.content}]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        use = {"type": "tool_use", "id": anthropic_tool_id(call.id), "name": call.name}
        blocks.append({**use, "input": tool_arguments(call.arguments)})
    return blocks


def to_anthropic_messages(messages: tuple[Message, ...]) -> tuple[str | None, list[dict[str, Any]]]:
    """The ``system`` text and the alternating user/assistant messages (tool results are user turns)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _content_blocks(message)
        if not blocks:
            blocks = [{"type": "text", "text": ""}]
        if out and out[-1]["role"] == role:
            # Anthropic wants alternating turns: merge neighbours, tool results first in a user turn.
            merged = out[-1]["content"] + blocks
            out[-1]["content"] = sorted(merged, key=lambda b: b["type"] != "tool_result")
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def to_anthropic_request(request: ChatRequest, target: ModelTarget) -> dict[str, Any]:
    """Keyword arguments for ``client.messages.create``."""
    system, messages = to_anthropic_messages(request.messages)
    kwargs: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": messages,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        kwargs["system"] = system
    # Recent SDK releases dropped the typed ``temperature``/``top_p`` arguments; the Messages API still
    # takes them in the body, so they travel as ``extra_body`` whatever the SDK version.
    sampling = {k: v for k, v in (("temperature", request.temperature), ("top_p", request.top_p)) if v is not None}
    if sampling:
        kwargs["extra_body"] = sampling
    if request.stop:
        kwargs["stop_sequences"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [to_anthropic_tool(t) for t in request.tools]
        choice = to_anthropic_tool_choice(request.tool_choice)
        if choice is not None:
            kwargs["tool_choice"] = choice
    return kwargs


def from_anthropic_response(response: Any) -> tuple[str, Usage, str | None, tuple[ToolCall, ...]]:
    """Content, usage, finish reason and tool calls of a ``Message``."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in response.content or ():
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input or {})))
    usage = Usage(response.usage.input_tokens or 0, response.usage.output_tokens or 0)
    return "".join(texts), usage, normalize_finish_reason(response.stop_reason), tuple(calls)


class AnthropicProvider:
    """``Provider`` over ``anthropic.AsyncAnthropic``."""

    kind = "anthropic"

    def __init__(self, client: anthropic.AsyncAnthropic, secrets: tuple[str, ...] = ()) -> None:
        self._client = client
        self._secrets = secrets

    @classmethod
    def create(cls, *, api_key: str | None, api_base: str | None, timeout_s: float) -> AnthropicProvider:
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=api_base,
            max_retries=0,
            timeout=timeout_s,
            http_client=sdk_http_client(anthropic, timeout_s),
        )
        return cls(client, secrets=(api_key,) if api_key else ())

    def _error(self, exc: BaseException, target: ModelTarget) -> Exception:
        return map_anthropic_error(exc, provider=self.kind, model=target.name, secrets=self._secrets)

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        started = time.perf_counter()
        try:
            response = await self._client.messages.create(
                **to_anthropic_request(request, target), timeout=target.timeout_s
            )
        except anthropic.AnthropicError as exc:
            raise self._error(exc, target) from exc
        content, usage, finish, calls = from_anthropic_response(response)
        return build_completion(
            target,
            content=content,
            usage=usage,
            started=started,
            finish_reason=finish,
            tool_calls=calls,
            upstream_model=getattr(response, "model", None),
        )

    async def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        try:
            upstream = await self._client.messages.create(
                **to_anthropic_request(request, target), stream=True, timeout=target.timeout_s
            )
        except anthropic.AnthropicError as exc:
            raise self._error(exc, target) from exc
        input_tokens = output_tokens = 0
        finish: str | None = None
        finished = False
        tool_index: dict[int, int] = {}  # content block index -> tool call index
        try:
            async for event in upstream:
                kind = event.type
                if kind == "message_start":
                    input_tokens = event.message.usage.input_tokens or 0
                    output_tokens = event.message.usage.output_tokens or 0
                elif kind == "content_block_start" and event.content_block.type == "tool_use":
                    position = tool_index.setdefault(event.index, len(tool_index))
                    block = event.content_block
                    yield StreamChunk(tool_calls=(ToolCallDelta(position, id=block.id, name=block.name),))
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield StreamChunk(delta=delta.text)
                    elif delta.type == "input_json_delta" and event.index in tool_index:
                        fragment = ToolCallDelta(tool_index[event.index], arguments=delta.partial_json or "")
                        yield StreamChunk(tool_calls=(fragment,))
                elif kind == "message_delta":
                    finish = normalize_finish_reason(event.delta.stop_reason) or finish
                    if event.usage is not None and event.usage.output_tokens is not None:
                        output_tokens = event.usage.output_tokens
                    if getattr(event.usage, "input_tokens", None):
                        input_tokens = event.usage.input_tokens
                elif kind == "message_stop":
                    finished = True
        except anthropic.AnthropicError as exc:
            raise self._error(exc, target) from exc
        except Exception as exc:  # transport errors surface raw from the SSE iterator
            raise self._error(exc, target) from exc
        finally:
            await upstream.close()
        if not finished:
            raise UpstreamStreamError(
                "the upstream stream ended before message_stop", provider=self.kind, model=target.name
            )
        yield StreamChunk(finish_reason=finish or "stop", usage=Usage(input_tokens, output_tokens))

    async def aclose(self) -> None:
        await self._client.close()
