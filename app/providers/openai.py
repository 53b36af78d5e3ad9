"""OpenAI chat completions codec (``POST {base}/chat/completions``); the base of OpenAI-compatible servers.

``encode`` builds the chat completions body from the canonical request, or, for a client that spoke OpenAI
chat itself (``request.source.protocol == "openai.chat"``), forwards the client's own body with only the
gateway-owned fields replaced: ``model`` (the target's upstream id), ``stream`` (when the gateway's call
differs) and ``stream_options.include_usage`` (forced on for streams, so the gateway can count tokens; the
usage chunk is flagged for the front-end not to forward when the client did not ask for it). A Responses
API request goes to OpenAI's own ``/responses`` as sent (``app.providers.openai_responses``). The answer
side lives in ``app.providers.openai_decode``.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import orjson

from app.domain import (
    DROPPABLE_OPTIONS,
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    TextPart,
    ToolSpec,
)
from app.errors import InvalidRequestError, UpstreamError
from app.providers import openai_responses
from app.providers.base import Capabilities, Decoded, HttpAnswer, HttpCall, ModelTarget
from app.providers.json_splice import splice
from app.providers.openai_decode import (
    PROTOCOL,
    OpenAIStreamDecoder,
    decode_completion,
    typed_error,
)
from app.providers.openai_responses import ResponsesStreamDecoder

MAX_TOOL_CALL_ID = 40  # OpenAI refuses longer tool call ids (ids made by other vendors can be longer)
PATH = "/chat/completions"
_FILE_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "text/markdown": ".md"}


def openai_tool_call_id(call_id: str) -> str:
    """``call_id`` itself, or a deterministic short stand-in when it is longer than OpenAI accepts (the
    same for the assistant's call and its tool result, so the pair still matches)."""
    if len(call_id) <= MAX_TOOL_CALL_ID:
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[: MAX_TOOL_CALL_ID - 5]


def _long_call_id(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    ids = [message.get("tool_call_id")]
    ids += [c.get("id") for c in message.get("tool_calls") or () if isinstance(c, dict)]
    return any(isinstance(i, str) and len(i) > MAX_TOOL_CALL_ID for i in ids)


def _short_call_ids(message: Any) -> Any:
    """A pass-through message whose tool call ids fit OpenAI's limit. Ids that long were made by another
    vendor (Gemini's carry their thought signature): the gateway owns them, so it shortens them the same
    way on the call and on its result; every other field stays as the client sent it."""
    if not _long_call_id(message):
        return message
    out = dict(message)
    if isinstance(out.get("tool_call_id"), str):
        out["tool_call_id"] = openai_tool_call_id(out["tool_call_id"])
    calls = out.get("tool_calls")
    if isinstance(calls, list):
        out["tool_calls"] = [
            {**c, "id": openai_tool_call_id(c["id"])} if isinstance(c, dict) and isinstance(c.get("id"), str) else c
            for c in calls
        ]
    return out


def effort_of(reasoning: Reasoning) -> str | None:
    """``reasoning_effort`` for a canonical reasoning request: its effort, or one for a token budget
    (<= 1024 low, <= 8192 medium, more high)."""
    if reasoning.effort is not None:
        return reasoning.effort
    budget = reasoning.budget_tokens
    if budget is None:
        return None
    return "low" if budget <= 1024 else "medium" if budget <= 8192 else "high"


# --- request pieces ----------------------------------------------------------------------------------------


def to_openai_tool(tool: ToolSpec) -> dict[str, Any]:
    """A ``ToolSpec`` as an OpenAI function tool (a tool without parameters gets an empty object schema)."""
    function: dict[str, Any] = {
        "name": tool.name,
        "parameters": tool.parameters or {"type": "object", "properties": {}},
    }
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def to_openai_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    """Canonical tool choice (OpenAI's own form; a Responses-style ``{"type": "function", "name"}`` is
    accepted too) as OpenAI chat's."""
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def to_openai_part(part: ContentPart, where: str) -> dict[str, Any]:
    """One content part: text, ``image_url`` (URL or ``data:`` URL) or ``file`` (inline data or file id)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        if part.url:
            url = part.url
        elif part.data:
            url = f"data:{part.media_type or 'image/png'};base64,{part.data}"
        else:
            raise InvalidRequestError(f"{where}: an image part has neither a URL nor data", param="messages")
        image: dict[str, Any] = {"url": url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if part.file_id:
        return {"type": "file", "file": {"file_id": part.file_id}}
    if part.data:
        media_type = part.media_type or "application/pdf"
        filename = part.filename or "document" + _FILE_EXTENSIONS.get(media_type, "")
        return {"type": "file", "file": {"file_data": f"data:{media_type};base64,{part.data}", "filename": filename}}
    raise InvalidRequestError(
        f"{where}: OpenAI chat takes files as inline data or a file id, not by URL", param="messages"
    )


def to_openai_message(message: Message, where: str = "message") -> dict[str, Any]:
    """One canonical message as an OpenAI chat message (reasoning from earlier turns is not sent back:
    chat completions has no field for it)."""
    if message.has_media and message.role != "user":
        raise InvalidRequestError(f"{where}: only user messages can carry images or files", param="messages")
    content: Any = message.content
    if message.has_media:
        content = [to_openai_part(p, where) for p in message.parts]
    out: dict[str, Any] = {"role": message.role, "content": content}
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
    elif message.name:
        out["name"] = message.name
    return out


def to_openai_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    schema: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    if fmt.description:
        schema["description"] = fmt.description
    return {"type": "json_schema", "json_schema": schema}


# --- the codec ---------------------------------------------------------------------------------------------


class OpenAICodec:
    """OpenAI's own API: every chat completions feature, and every droppable option forwarded."""

    kind: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    protocol: ClassVar[str | None] = PROTOCOL
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    forwarded_options: ClassVar[frozenset[str]] = frozenset(DROPPABLE_OPTIONS)
    takes_top_k: ClassVar[bool] = False

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return Capabilities(
            images=True,
            image_urls=True,
            files=True,
            logprobs=True,
            logit_bias=True,
            top_k=self.takes_top_k,
            native_n=True,
            droppable=self.forwarded_options,
        )

    # -- requests

    def encode(self, request: ChatRequest, target: ModelTarget, *, stream: bool) -> HttpCall:
        if request.source is not None and self._is_responses(request):
            source = request.source
            body = openai_responses.passthrough_body(source.body, target.upstream_model, stream=stream)
            return HttpCall(path=openai_responses.PATH, body=splice(source.raw, source.body, body), stream=stream)
        if request.source is not None and self._is_passthrough(request):
            source = request.source
            body = self.passthrough_body(source.body, target, stream=stream)
            return HttpCall(path=PATH, body=splice(source.raw, source.body, body), stream=stream)
        return HttpCall(path=PATH, body=orjson.dumps(self.request_body(request, target, stream=stream)), stream=stream)

    def passthrough_body(self, source: dict[str, Any], target: ModelTarget, *, stream: bool) -> dict[str, Any]:
        """The client's body with only the gateway-owned fields replaced; everything else, droppable
        options and fields Switchyard does not know included, goes as the client sent it."""
        body = dict(source)
        body["model"] = target.upstream_model
        if stream:
            body["stream"] = True
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        elif body.get("stream"):
            body.pop("stream")
            body.pop("stream_options", None)
        messages = body.get("messages")
        if isinstance(messages, list) and any(_long_call_id(m) for m in messages):
            body["messages"] = [_short_call_ids(m) for m in messages]
        return body

    def request_body(self, request: ChatRequest, target: ModelTarget, *, stream: bool) -> dict[str, Any]:
        """The chat completions body of a canonical request."""
        body: dict[str, Any] = {
            "model": target.upstream_model,
            "messages": [to_openai_message(m, f"messages[{i}]") for i, m in enumerate(request.messages)],
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        self._sampling(request, body)
        if request.tools:
            body["tools"] = [to_openai_tool(t) for t in request.tools]
            if request.tool_choice is not None:
                body["tool_choice"] = to_openai_tool_choice(request.tool_choice)
            if request.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format is not None:
            body["response_format"] = to_openai_response_format(request.response_format)
        if request.reasoning is not None and (effort := effort_of(request.reasoning)) is not None:
            body["reasoning_effort"] = effort
        if request.verbosity is not None:
            body["verbosity"] = request.verbosity
        self._droppable(request, body)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _sampling(self, request: ChatRequest, body: dict[str, Any]) -> None:
        if request.top_k is not None:
            if not self.takes_top_k:
                raise InvalidRequestError(f"{self.kind} does not support top_k", param="top_k", provider=self.kind)
            body["top_k"] = request.top_k
        for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "logit_bias"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.stop:
            body["stop"] = list(request.stop)
        if request.logprobs:
            body["logprobs"] = True
            if request.top_logprobs is not None:
                body["top_logprobs"] = request.top_logprobs
        if request.n != 1:
            body["n"] = request.n

    def _droppable(self, request: ChatRequest, body: dict[str, Any]) -> None:
        """The droppable options this target forwards. OpenAI refuses ``metadata`` unless ``store`` is
        true ("The 'metadata' parameter is only allowed when 'store' is enabled"), so it goes only with
        ``store: true``."""
        for name in DROPPABLE_OPTIONS:
            value = getattr(request, name)
            if name in self.forwarded_options and value is not None and value != {}:
                body[name] = value
        if "metadata" in body and body.get("store") is not True:
            del body["metadata"]

    # -- answers

    def decode(self, answer: HttpAnswer, request: ChatRequest, target: ModelTarget) -> Decoded:
        if self._is_responses(request):
            return openai_responses.decode_response(answer.body, provider=self.kind, model=target.name)
        return decode_completion(
            answer.body, provider=self.kind, model=target.name, passthrough=self._is_passthrough(request)
        )

    def stream_decoder(self, request: ChatRequest, target: ModelTarget) -> OpenAIStreamDecoder | ResponsesStreamDecoder:
        if self._is_responses(request):
            return ResponsesStreamDecoder(provider=self.kind, model=target.name)
        passthrough = self._is_passthrough(request)
        client_usage = False
        n = request.n
        if passthrough and request.source is not None:
            options = request.source.body.get("stream_options")
            client_usage = isinstance(options, dict) and options.get("include_usage") is True
            source_n = request.source.body.get("n")
            n = source_n if isinstance(source_n, int) and source_n > 0 else 1
        return OpenAIStreamDecoder(
            provider=self.kind, model=target.name, passthrough=passthrough, client_usage=client_usage, n=n
        )

    def error(self, answer: HttpAnswer, target: ModelTarget) -> UpstreamError:
        try:
            body: object = orjson.loads(answer.body) if answer.body else None
        except orjson.JSONDecodeError:
            body = None  # an HTML page from a proxy, a truncated body: the status alone decides
        return typed_error(answer.status, body, provider=self.kind, model=target.name, headers=answer.headers)

    def _is_passthrough(self, request: ChatRequest) -> bool:
        return request.source is not None and request.source.protocol == PROTOCOL

    def _is_responses(self, request: ChatRequest) -> bool:
        """A Responses API request, which OpenAI itself takes as sent (``app.providers.openai_responses``);
        OpenAI-compatible servers get the canonical chat translation."""
        source = request.source
        return source is not None and source.protocol == openai_responses.PROTOCOL and self.kind == "openai"


CODEC = OpenAICodec()
