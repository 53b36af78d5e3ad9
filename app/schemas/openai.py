"""The OpenAI chat completions protocol at the edge: request model, its translation to a ``ChatRequest``
(with a 400 naming every parameter we cannot honour), and the response and stream-chunk shapes.

Accepted: ``model``, ``messages`` (system, developer, user, assistant and tool roles; string or text-part
content), ``max_tokens``/``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, ``n`` = 1, ``user``,
``stream``, ``stream_options``, ``tools`` (functions), ``tool_choice``, ``metadata``. Parameters that ask for
nothing beyond the default (``n: 1``, ``logprobs: false``, ``presence_penalty: 0``, ``parallel_tool_calls:
true``, ``response_format: {"type": "text"}``, ...) are accepted; anything else is refused by name.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain import ChatRequest, Completion, Message, ToolCall, ToolCallDelta, ToolSpec, Usage
from app.errors import InvalidRequestError

MAX_TEXT_CHARS = 1_000_000

# Parameters accepted only with the value that asks for nothing special (None is always accepted).
NOOP_VALUES: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
    "logit_bias": ({},),
    "store": (False,),
    "parallel_tool_calls": (True,),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
}
REASONS: dict[str, str] = {
    "n": "only n=1 is supported",
    "functions": "legacy 'functions' is not supported; use 'tools'",
    "function_call": "legacy 'function_call' is not supported; use 'tool_choice'",
    "parallel_tool_calls": "parallel_tool_calls=false cannot be honoured by every provider",
    "response_format": "only response_format {'type': 'text'} is supported",
    "audio": "audio output is not supported",
    "modalities": "only text output is supported",
}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    include_obfuscation: bool | None = None  # accepted; Switchyard never pads chunks


class FunctionCallIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(default="", max_length=MAX_TEXT_CHARS)


class ToolCallIn(BaseModel):
    id: str = Field(min_length=1, max_length=1000)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(BaseModel):
    """One message; ``content`` is a string or a list of parts (text parts only)."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=1000)
    refusal: str | None = None


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = Field(default=None, max_length=100_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionDef


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: dict[str, str]


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat completions request; unknown fields are collected and refused by name."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=10_000)
    max_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stop: str | list[str] | None = None
    user: str | None = Field(default=None, max_length=256)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def _unsupported(body: ChatCompletionRequest) -> list[str]:
    """Names of parameters asking for something Switchyard does not do."""
    refused = []
    for name, value in (body.model_extra or {}).items():
        if value is None or value in NOOP_VALUES.get(name, ()):
            continue
        refused.append(name)
    for i, tool in enumerate(body.tools or ()):
        if tool.function.strict:
            refused.append(f"tools[{i}].function.strict")
    return refused


def _text_of(content: str | list[dict[str, Any]] | None, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequestError(
                f"{where}.content[{j}]: content part type {kind!r} is not supported (text parts only)",
                param=f"{where}.content[{j}].type",
            )
        texts.append(part["text"])
    return "".join(texts)


def _message(index: int, m: ChatMessageIn) -> Message:
    where = f"messages[{index}]"
    extra = [k for k, v in (m.model_extra or {}).items() if v is not None]
    if extra:
        raise InvalidRequestError(f"{where}: unsupported field(s): {', '.join(extra)}", param=f"{where}.{extra[0]}")
    text = _text_of(m.content, where)
    if m.role in ("system", "developer"):
        return Message("system", text, name=m.name)
    if m.role == "user":
        return Message("user", text, name=m.name)
    if m.role == "assistant":
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ())
        return Message("assistant", text, tool_calls=calls, name=m.name)
    if m.role == "tool":
        if not m.tool_call_id:
            raise InvalidRequestError(f"{where}: a tool message needs tool_call_id", param=f"{where}.tool_call_id")
        return Message("tool", text, tool_call_id=m.tool_call_id, name=m.name)
    hint = " (legacy 'function' messages are not supported; use 'tool')" if m.role == "function" else ""
    raise InvalidRequestError(f"{where}: unsupported role {m.role!r}{hint}", param=f"{where}.role")


def _tool_choice(body: ChatCompletionRequest) -> str | dict[str, Any] | None:
    choice = body.tool_choice
    if choice is None or isinstance(choice, str):
        if choice == "required" and not body.tools:
            raise InvalidRequestError("tool_choice 'required' needs tools", param="tool_choice")
        return choice
    name = choice.function.get("name")
    names = {t.function.name for t in body.tools or ()}
    if not name or name not in names:
        raise InvalidRequestError(f"tool_choice names unknown function {name!r}", param="tool_choice")
    return {"type": "function", "function": {"name": name}}


def to_chat_request(body: ChatCompletionRequest) -> ChatRequest:
    """The vendor-neutral request; ``InvalidRequestError`` (400) names any unsupported parameter."""
    refused = _unsupported(body)
    if refused:
        reasons = "; ".join(f"{n}: {REASONS[n]}" for n in refused if n in REASONS)
        message = f"unsupported parameter(s): {', '.join(refused)}" + (f" ({reasons})" if reasons else "")
        raise InvalidRequestError(message, param=refused[0], unsupported=refused)
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if len(stop) > 4:
        raise InvalidRequestError("stop: at most 4 sequences", param="stop")
    tools = tuple(
        ToolSpec(t.function.name, t.function.description or "", t.function.parameters or {}) for t in body.tools or ()
    )
    return ChatRequest(
        messages=tuple(_message(i, m) for i, m in enumerate(body.messages)),
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=stop,
        tools=tools,
        tool_choice=_tool_choice(body),
        metadata=dict(body.metadata or {}),
    )


# --- responses -----------------------------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


class FunctionOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionOut


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None
    refusal: str | None = None


class ChoiceOut(BaseModel):
    index: int = 0
    message: AssistantMessageOut
    finish_reason: str | None
    logprobs: None = None


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    """``chat.completion``; ``model`` is the catalogue name of the model that answered. ``switchyard``
    (ignored by OpenAI clients) says which provider answered, at what cost and by which route."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    system_fingerprint: str | None = None
    switchyard: dict[str, Any] = {}


def completion_response(completion: Completion, extra: dict[str, Any]) -> ChatCompletionResponse:
    calls = [
        ToolCallOut(id=c.id, function=FunctionOut(name=c.name, arguments=c.arguments)) for c in completion.tool_calls
    ]
    message = AssistantMessageOut(
        content=completion.content if completion.content or not calls else None, tool_calls=calls or None
    )
    return ChatCompletionResponse(
        id=completion_id(),
        created=int(time.time()),
        model=completion.model,
        choices=[ChoiceOut(message=message, finish_reason=completion.finish_reason or "stop")],
        usage=UsageOut(**usage_dict(completion.usage)),
        switchyard=extra,
    )


def chunk_dict(
    ident: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    *,
    include_usage: bool = False,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` is the usage-only chunk (``choices: []``)."""
    body: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
    body["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    )
    if include_usage:
        body["usage"] = usage_dict(usage) if usage is not None else None
    return body


def tool_delta_dict(delta: ToolCallDelta) -> dict[str, Any]:
    """A normalized tool-call fragment: id, type and name on a call's first fragment only."""
    out: dict[str, Any] = {"index": delta.index}
    function: dict[str, Any] = {"arguments": delta.arguments}
    if delta.id is not None:
        out["id"] = delta.id
        out["type"] = "function"
    if delta.name is not None:
        function["name"] = delta.name
    out["function"] = function
    return out
