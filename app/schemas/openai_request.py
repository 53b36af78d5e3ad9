"""OpenAI chat completions requests at the edge: the body as parsed from the client's bytes, its model, and
its decoding into the canonical ``ChatRequest``.

Everything the OpenAI API takes and real clients send is decoded: content parts (text, images by URL or
``data:`` URL, files), assistant turns from stored histories (``tool_calls``, and the output-only
``refusal``, ``annotations``, ``audio: null``, ``function_call: null``, ``reasoning_content``... which are
accepted and ignored), tools with ``strict``, ``tool_choice`` (``allowed_tools`` too), structured outputs,
reasoning effort, sampling (seed, penalties, logprobs, logit_bias, n) and the droppable options.

Unknown top-level fields are not refused: the client's body travels in ``ChatRequest.source`` for the
same-protocol pass-through, where the upstream decides; a translated target ignores them and the answer
names them (``DecodedChat.ignored``). Refused with a 400 naming the field: audio output and audio input,
the legacy ``function`` role; ``web_search_options`` and the legacy ``functions``/``function_call`` are
honoured only by an OpenAI-protocol upstream (``DecodedChat.passthrough_only``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, ValidationError

from app.api.errors import invalid_request
from app.domain import ChatRequest, Reasoning, ResponseFormat, SourceBody, ToolSpec
from app.records import record
from app.schemas.openai_content import In, MessageIn, bad, decode_message

PROTOCOL = "openai.chat"
PASSTHROUGH_ONLY = ("web_search_options", "functions", "function_call")
IGNORED_KNOWN = ("prediction",)  # known, changes latency only: ignored by translated targets


class StreamOptionsIn(In):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # accepted; Switchyard never pads chunks


class FunctionDefIn(In):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_.:-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(In):
    type: Literal["function"]
    function: FunctionDefIn


class NamedFunctionIn(In):
    name: str = Field(min_length=1)


class AllowedToolsIn(In):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]] = Field(min_length=1)


class ToolChoiceIn(In):
    type: Literal["function", "allowed_tools"]
    function: NamedFunctionIn | None = None
    allowed_tools: AllowedToolsIn | None = None


class JsonSchemaIn(In):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormatIn(In):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaIn | None = None


Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
Bias = Annotated[float, Field(ge=-100, le=100)]
MetadataValue = Annotated[str, Field(max_length=512)]


class ChatCompletionRequest(In):
    """The OpenAI chat completions request; ``model_extra`` holds the fields Switchyard does not know."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[MessageIn] = Field(min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=1, le=100_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=100_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)  # not OpenAI's; compatible servers take it
    stop: str | list[str] | None = Field(default=None)
    n: int | None = Field(default=None, ge=1, le=128)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, Bias] | None = Field(default=None, max_length=1024)
    stream: bool | None = None
    stream_options: StreamOptionsIn | None = None
    tools: list[ToolIn] | None = Field(default=None, max_length=1024)
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    service_tier: str | None = Field(default=None, max_length=64)
    store: bool | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    safety_identifier: str | None = Field(default=None, max_length=256)
    user: str | None = Field(default=None, max_length=512)
    metadata: dict[str, MetadataValue] | None = Field(default=None, max_length=16)
    modalities: list[str] | None = None
    audio: Any = None  # audio output parameters (refused)
    prediction: Any = None  # predicted output: latency only; kept by the pass-through, else ignored
    web_search_options: Any = None
    functions: Any = None  # legacy function calling
    function_call: Any = None


@record(slots=True)
class DecodedChat:
    """A decoded request: the body model, the canonical request, the unknown (or known but untranslated)
    fields a translated target ignores, and the fields only an OpenAI-protocol upstream honours."""

    body: ChatCompletionRequest
    request: ChatRequest
    ignored: tuple[str, ...] = ()
    passthrough_only: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return self.body.model

    @property
    def stream(self) -> bool:
        return bool(self.body.stream)

    @property
    def include_usage(self) -> bool:
        options = self.body.stream_options
        return bool(options is not None and options.include_usage)


# --- the body ---------------------------------------------------------------------------------------------


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, parsed from the client's bytes (whatever the content type says).
    Malformed JSON, invalid UTF-8, a lone UTF-16 surrogate, ``NaN``/``Infinity`` or a non-object: 400."""
    if not raw.strip():
        raise bad("the request body is empty; expected a JSON object", None, "invalid_json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad(f"malformed JSON body: {_json_problem(raw, exc)}", None, "invalid_json") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
        raise bad(f"the request body must be a JSON object, not {kind}", None, "invalid_type")
    return data


def _json_problem(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    at = raw[exc.pos : exc.pos + 9]
    if at.startswith((b"NaN", b"Infinity", b"-Infinity")):
        return f"NaN and Infinity are not JSON numbers ({exc})"
    if "surrogate" in exc.msg and "UTF-8" not in exc.msg:
        return f"a string holds a lone UTF-16 surrogate escape, which is not valid Unicode ({exc})"
    if "UTF-8" in exc.msg:
        return f"the body is not valid UTF-8 ({exc})"
    return str(exc)


def decode_chat(data: dict[str, Any], raw: bytes | None = None) -> DecodedChat:
    """The canonical request of an OpenAI chat body (the dict parsed from the client's bytes ``raw``); a 400
    ``InvalidRequestError`` names the field of anything invalid or refused."""
    try:
        body = ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None
    _refuse_audio(body)
    tools = tuple(
        ToolSpec(t.function.name, t.function.description or "", t.function.parameters or {}, t.function.strict)
        for t in body.tools or ()
    )
    tools, tool_choice = _tool_choice(body, tools)
    request = ChatRequest(
        messages=tuple(decode_message(i, m) for i, m in enumerate(body.messages)),
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        stop=_stop(body.stop),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=body.parallel_tool_calls if tools else None,
        response_format=_response_format(body.response_format),
        reasoning=Reasoning(effort=body.reasoning_effort) if body.reasoning_effort else None,
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logprobs=bool(body.logprobs),
        top_logprobs=_top_logprobs(body),
        logit_bias=_logit_bias(body.logit_bias),
        n=body.n or 1,
        verbosity=body.verbosity,
        store=body.store,
        prompt_cache_key=body.prompt_cache_key,
        safety_identifier=body.safety_identifier,
        service_tier=body.service_tier,
        user=body.user,
        metadata=_metadata(body.metadata),
        source=SourceBody(PROTOCOL, data, raw=raw),
    )
    ignored = [*_header_safe(body.model_extra or {})] + [n for n in IGNORED_KNOWN if getattr(body, n) is not None]
    passthrough_only = tuple(name for name in PASSTHROUGH_ONLY if getattr(body, name) is not None)
    return DecodedChat(body, request, tuple(ignored), passthrough_only)


_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_NAMED = 32


def _header_safe(names: Iterable[str]) -> list[str]:
    """Unknown field names fit for a response header (a name is the client's text: no control characters,
    no non-ASCII, bounded); the others are counted as ``other``."""
    safe = [name for name in names if _NAME.fullmatch(name)]
    other = sum(1 for name in names if not _NAME.fullmatch(name)) + max(0, len(safe) - MAX_NAMED)
    return safe[:MAX_NAMED] + ([f"other({other})"] if other else [])


def _refuse_audio(body: ChatCompletionRequest) -> None:
    for j, modality in enumerate(body.modalities or ()):
        if modality != "text":
            raise bad(
                f"modalities: only text output is supported, not {modality!r}", f"modalities.{j}", "unsupported_value"
            )
    if body.audio is not None:
        raise bad("audio output is not supported", "audio", "unsupported_parameter")


def _stop(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if len(stop) > 4:
        raise bad(f"stop: at most 4 sequences, got {len(stop)}", "stop", "array_above_max_length")
    return tuple(stop)


def _top_logprobs(body: ChatCompletionRequest) -> int | None:
    if body.top_logprobs is None or (body.top_logprobs == 0 and not body.logprobs):
        return None
    if not body.logprobs:
        raise bad("top_logprobs requires logprobs: true", "top_logprobs")
    return body.top_logprobs


def _logit_bias(bias: dict[str, float] | None) -> dict[str, float] | None:
    for token in bias or {}:
        if not token.isascii() or not token.isdigit():
            raise bad(f"logit_bias: keys are token ids (decimal strings), not {token!r}", f"logit_bias.{token}")
    return dict(bias) if bias else None


def _metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    for key in metadata or {}:
        if len(key) > 64:
            raise bad("metadata: keys are at most 64 characters", f"metadata.{key[:64]}")
    return dict(metadata or {})


def _response_format(spec: ResponseFormatIn | None) -> ResponseFormat | None:
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return ResponseFormat("json_object")
    schema = spec.json_schema
    if schema is None:
        raise bad(
            "response_format json_schema needs 'json_schema'",
            "response_format.json_schema",
            "missing_required_parameter",
        )
    if schema.schema_ is None:
        raise bad(
            "response_format json_schema needs 'json_schema.schema'",
            "response_format.json_schema.schema",
            "missing_required_parameter",
        )
    return ResponseFormat("json_schema", schema.name, schema.schema_, schema.strict, schema.description)


def _tool_choice(
    body: ChatCompletionRequest, tools: tuple[ToolSpec, ...]
) -> tuple[tuple[ToolSpec, ...], str | dict[str, Any] | None]:
    """The tools and the canonical tool choice; ``allowed_tools`` becomes its mode over the allowed tools."""
    choice = body.tool_choice
    names = {t.name for t in tools}
    if choice is None or isinstance(choice, str):
        if choice == "required" and not tools:
            raise bad("tool_choice 'required' needs tools", "tool_choice")
        return tools, choice
    if choice.type == "function":
        name = choice.function.name if choice.function else None
        if name is None:
            raise bad("tool_choice names no function", "tool_choice.function.name", "missing_required_parameter")
        if name not in names:
            raise bad(f"tool_choice names function {name!r}, which is not in tools", "tool_choice.function.name")
        return tools, {"type": "function", "function": {"name": name}}
    allowed = choice.allowed_tools
    if allowed is None:
        raise bad(
            "tool_choice allowed_tools needs 'allowed_tools'", "tool_choice.allowed_tools", "missing_required_parameter"
        )
    wanted: set[str] = set()
    for k, tool in enumerate(allowed.tools):
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or name not in names:
            raise bad(
                f"tool_choice.allowed_tools.tools[{k}] names no function in tools",
                f"tool_choice.allowed_tools.tools.{k}",
            )
        wanted.add(name)
    return tuple(t for t in tools if t.name in wanted), allowed.mode
