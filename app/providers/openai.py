"""OpenAI chat completions through the official ``openai`` SDK (base of OpenAI-compatible servers)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import openai

from app.domain import ChatRequest, Completion, Message, StreamChunk, ToolCall, ToolCallDelta, ToolSpec, Usage
from app.errors import UpstreamServerError, UpstreamStreamError
from app.providers.base import ModelTarget, build_completion, normalize_finish_reason
from app.providers.errors import map_openai_error
from app.providers.http import sdk_http_client
from app.tokens import estimate_prompt_tokens, estimate_tokens

MAX_TOOL_CALL_ID = 40  # OpenAI refuses longer tool call ids (ids made by other vendors can be longer)


def openai_tool_call_id(call_id: str) -> str:
    """``call_id`` itself, or a deterministic short stand-in when it is longer than OpenAI accepts (the
    same for the assistant's call and its tool result, so the pair still matches)."""
    if len(call_id) <= MAX_TOOL_CALL_ID:
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[: MAX_TOOL_CALL_ID - 5]


def to_openai_tool(tool: ToolSpec) -> dict[str, Any]:
    """A ``ToolSpec`` as an OpenAI function tool (a tool without parameters gets an empty object schema)."""
    parameters = tool.parameters or {"type": "object", "properties": {}}
    function: dict[str, Any] = {"name": tool.name, "parameters": parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def to_openai_message(message: Message) -> dict[str, Any]:
    """One of our messages as an OpenAI chat message."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": openai_tool_call_id(call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in message.tool_calls
        ]
    if message.role == "tool":
        out["tool_call_id"] = openai_tool_call_id(message.tool_call_id or "")
    if message.name and message.role in ("user", "system"):
        out["name"] = message.name
    return out


def to_openai_request(
    request: ChatRequest,
    target: ModelTarget,
    *,
    stream: bool,
    max_tokens_field: str = "max_completion_tokens",
) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create``."""
    kwargs: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": [to_openai_message(m) for m in request.messages],
    }
    if request.max_tokens is not None:
        kwargs[max_tokens_field] = request.max_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.stop:
        kwargs["stop"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [to_openai_tool(t) for t in request.tools]
        if request.tool_choice is not None:
            kwargs["tool_choice"] = request.tool_choice
    if stream:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    return kwargs


def _as_dict(value: Any) -> dict[str, Any]:
    """The upstream's JSON object; an SDK model (``ChatCompletion``, ``ChatCompletionChunk``) is dumped to one."""
    if isinstance(value, dict):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump()
    raise TypeError(f"expected a JSON object from the upstream, got {type(value).__name__}")


def _usage(data: dict[str, Any]) -> Usage | None:
    usage = data.get("usage")
    if not usage:
        return None
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)


def from_openai_response(response: Any) -> tuple[str, Usage | None, str | None, tuple[ToolCall, ...]]:
    """Content, usage, finish reason and tool calls of a ``chat.completion`` (its JSON object, as the
    provider receives it, or a ``ChatCompletion``)."""
    data = _as_dict(response)
    choices = data.get("choices") or ()
    choice = choices[0] if choices else None
    message = (choice.get("message") or {}) if choice is not None else {}
    calls = tuple(
        ToolCall(
            id=c.get("id") or "", name=c["function"].get("name") or "", arguments=c["function"].get("arguments") or "{}"
        )
        for c in (message.get("tool_calls") or ())
        if c.get("function") is not None
    )
    finish = normalize_finish_reason(choice.get("finish_reason")) if choice is not None else None
    return message.get("content") or "", _usage(data), finish, calls


def from_openai_chunk(chunk: Any) -> tuple[StreamChunk | None, Usage | None]:
    """A ``chat.completion.chunk`` (its JSON object or a ``ChatCompletionChunk``) as our chunk (None when it
    carries no content) and its usage, if any."""
    data = _as_dict(chunk)
    usage = _usage(data)
    choices = data.get("choices")
    if not choices:
        return None, usage
    choice = choices[0]
    delta = choice.get("delta") or {}
    tool_deltas = tuple(
        ToolCallDelta(
            index=d["index"] if d.get("index") is not None else position,  # some compatible servers omit it
            id=d.get("id"),
            name=(d.get("function") or {}).get("name"),
            arguments=(d.get("function") or {}).get("arguments") or "",
        )
        for position, d in enumerate(delta.get("tool_calls") or ())
    )
    text = delta.get("content") or ""
    finish = normalize_finish_reason(choice.get("finish_reason"))
    if not text and not tool_deltas and finish is None:
        return None, usage
    return StreamChunk(delta=text, tool_calls=tool_deltas, finish_reason=finish), usage


def estimate_usage(request: ChatRequest, output_text: str) -> Usage:
    """Usage for servers that report none: a documented heuristic (see ``app.tokens``)."""
    return Usage(estimate_prompt_tokens(request), estimate_tokens(output_text))


class OpenAIProvider:
    """``Provider`` over ``openai.AsyncOpenAI``; one instance per (base URL, key) endpoint."""

    kind = "openai"
    max_tokens_field = "max_completion_tokens"

    def __init__(self, client: openai.AsyncOpenAI, secrets: tuple[str, ...] = ()) -> None:
        self._client = client
        self._secrets = secrets

    @classmethod
    def create(cls, *, api_key: str | None, api_base: str | None, timeout_s: float) -> OpenAIProvider:
        client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=api_base,
            max_retries=0,
            timeout=timeout_s,
            http_client=sdk_http_client(openai, timeout_s),
        )
        return cls(client, secrets=(api_key,) if api_key else ())

    async def _create(self, kwargs: dict[str, Any], timeout_s: float) -> Any:
        """``chat.completions.create`` without its per-call TypedDict transform of the parameters (~15% of
        the gateway's CPU per request, bench/results/PROFILE.md): ``to_openai_request`` already builds the
        wire JSON, so it goes through the SDK client's documented low-level ``post`` (same auth, headers,
        timeout and error mapping, the SDK's own SSE decoding and its error events). The answer stays the
        upstream's JSON object (``cast_to=object``, ``AsyncStream[object]``): building ``ChatCompletion`` /
        ``ChatCompletionChunk`` models that are read once cost 11% of the CPU per request and 41% per stream
        (bench/results/PROFILE.md, second round)."""
        return await self._client.post(
            "/chat/completions",
            body=kwargs,
            cast_to=object,
            options={"timeout": timeout_s},
            stream=bool(kwargs.get("stream")),
            stream_cls=openai.AsyncStream[object],
        )

    def _error(self, exc: BaseException, target: ModelTarget) -> Exception:
        return map_openai_error(exc, provider=self.kind, model=target.name, secrets=self._secrets)

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        started = time.perf_counter()
        kwargs = to_openai_request(request, target, stream=False, max_tokens_field=self.max_tokens_field)
        try:
            response = await self._create(kwargs, target.timeout_s)
        except openai.OpenAIError as exc:
            raise self._error(exc, target) from exc
        try:
            content, usage, finish, calls = from_openai_response(response)
        except (TypeError, AttributeError, KeyError, IndexError) as exc:
            raise UpstreamServerError(
                f"malformed chat completion from the upstream ({type(exc).__name__})",
                provider=self.kind,
                model=target.name,
            ) from exc
        return build_completion(
            target,
            content=content,
            usage=usage or estimate_usage(request, content),
            started=started,
            finish_reason=finish,
            tool_calls=calls,
            upstream_model=response.get("model"),
        )

    async def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        kwargs = to_openai_request(request, target, stream=True, max_tokens_field=self.max_tokens_field)
        try:
            upstream = await self._create(kwargs, target.timeout_s)
        except openai.OpenAIError as exc:
            raise self._error(exc, target) from exc
        usage: Usage | None = None
        finish: str | None = None
        text_parts: list[str] = []
        try:
            async for raw in upstream:
                chunk, chunk_usage = from_openai_chunk(raw)
                usage = chunk_usage or usage
                if chunk is None:
                    continue
                finish = chunk.finish_reason or finish
                if chunk.delta or chunk.tool_calls:
                    text_parts.append(chunk.delta)
                    yield StreamChunk(delta=chunk.delta, tool_calls=chunk.tool_calls)
        except openai.OpenAIError as exc:
            raise self._error(exc, target) from exc
        except Exception as exc:  # transport errors surface raw from the SSE iterator
            raise self._error(exc, target) from exc
        finally:
            await upstream.close()
        if finish is None:
            raise UpstreamStreamError(
                "the upstream stream ended before the model finished", provider=self.kind, model=target.name
            )
        yield StreamChunk(finish_reason=finish, usage=usage or estimate_usage(request, "".join(text_parts)))

    async def aclose(self) -> None:
        await self._client.close()


def tool_arguments(arguments: str) -> dict[str, Any]:
    """Parse a tool call's JSON arguments leniently (models sometimes emit invalid JSON)."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}
