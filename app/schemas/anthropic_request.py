"""Anthropic Messages requests at the edge (``POST /v1/messages`` and ``/v1/messages/count_tokens``): the
body as parsed from the client's bytes, and its decoding into the canonical ``ChatRequest``.

Decoded: ``system`` and ``messages`` (see ``app.schemas.anthropic_content``), client ``tools``
(``input_schema``, ``strict``), ``tool_choice`` (``auto``, ``any`` -> required, ``tool`` -> a named tool,
``none``; ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``), ``max_tokens``,
``temperature``, ``top_p``, ``top_k``, ``stop_sequences``, ``thinking`` (``enabled`` with
``budget_tokens`` -> a reasoning budget; ``adaptive`` -> reasoning at ``output_config.effort``, medium by
default; ``disabled``), ``metadata.user_id`` (-> ``user``), ``output_config.format`` / the beta
``output_format`` (a JSON schema -> structured output).

The client's body and its ``anthropic-beta`` header travel in ``ChatRequest.source``: an Anthropic upstream
gets them as sent (only ``model`` replaced). For a translated target: ``cache_control`` breakpoints,
``service_tier``, ``context_management``, the beta header and unknown fields are dropped and named
(``DecodedMessages.ignored``); server tools (web search, code execution, Anthropic-defined tools without an
``input_schema``), ``mcp_servers``, ``container`` and Anthropic-only content blocks are honoured only by an
Anthropic upstream (``DecodedMessages.anthropic_only``: the others are skipped, or refused with a 400).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.errors import invalid_request
from app.domain import ChatRequest, Reasoning, ResponseFormat, SourceBody, ToolSpec
from app.records import record
from app.schemas.anthropic_content import Content, bad, decode_messages, decode_system
from app.schemas.openai_request import _header_safe

PROTOCOL = "anthropic.messages"
FORWARDED_HEADERS = ("anthropic-beta",)  # the client's protocol headers an Anthropic upstream gets
IGNORED_KNOWN = ("service_tier", "context_management", "inference_geo")  # harmless, Anthropic-only
ANTHROPIC_ONLY_FIELDS = ("mcp_servers", "container")


class In(BaseModel):
    """Strict JSON types; unknown fields are kept (the pass-through sends them as they are)."""

    model_config = ConfigDict(extra="allow", strict=True)


class ToolChoiceIn(In):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingIn(In):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(default=None, ge=0)


class MetadataIn(In):
    user_id: str | None = Field(default=None, max_length=512)


Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class MessagesRequest(In):
    """The Messages request (``max_tokens`` is required by ``/v1/messages``, not by ``count_tokens``)."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[Any] = Field(min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=1, le=100_000_000)
    system: str | list[Any] | None = None
    metadata: MetadataIn | None = None
    stop_sequences: list[str] | None = Field(default=None, max_length=8192)
    stream: bool | None = None
    temperature: Unit | None = None
    top_p: Unit | None = None
    top_k: int | None = Field(default=None, ge=0)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=4096)
    tool_choice: ToolChoiceIn | None = None
    thinking: ThinkingIn | None = None
    output_config: dict[str, Any] | None = None
    output_format: dict[str, Any] | None = None  # the structured-outputs beta's spelling
    service_tier: Any = None
    context_management: Any = None
    inference_geo: Any = None
    mcp_servers: Any = None
    container: Any = None


@record(slots=True)
class DecodedMessages:
    """A decoded request: the body model, the canonical request, what a translated target ignores, and
    what only an Anthropic upstream honours."""

    body: MessagesRequest
    request: ChatRequest
    ignored: tuple[str, ...] = ()
    anthropic_only: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return self.body.model

    @property
    def stream(self) -> bool:
        return bool(self.body.stream)


def protocol_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that go to an Anthropic upstream with its body (``anthropic-beta``)."""
    return {name: headers[name] for name in FORWARDED_HEADERS if headers.get(name)}


def decode_messages_request(
    data: dict[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    count_only: bool = False,
    raw: bytes | None = None,
) -> DecodedMessages:
    """The canonical request of a Messages body; a 400 ``InvalidRequestError`` names the field of anything
    invalid. ``count_only``: a ``count_tokens`` body (no ``max_tokens``)."""
    try:
        body = MessagesRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None
    if body.max_tokens is None and not count_only:
        raise bad("max_tokens: Field required", "max_tokens")
    found = Content()
    decode_system(body.system, found)
    decode_messages(body.messages, found)
    tools, server_tools = _tools(body.tools or [])
    choice, parallel = _tool_choice(body.tool_choice, tools)
    forwarded = protocol_headers(headers or {})
    request = ChatRequest(
        messages=tuple(found.messages),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        stop=tuple(body.stop_sequences or ()),
        tools=tools,
        tool_choice=choice if tools else None,
        parallel_tool_calls=parallel if tools else None,
        response_format=_response_format(body),
        reasoning=_reasoning(body),
        user=body.metadata.user_id if body.metadata else None,
        source=SourceBody(PROTOCOL, data, forwarded, raw),
    )
    ignored = _header_safe(body.model_extra or {}) + [n for n in IGNORED_KNOWN if getattr(body, n) is not None]
    if found.cache_control or system_cached(body.tools or []):
        ignored.append("cache_control")
    ignored += [f"header:{name}" for name in forwarded]
    anthropic_only = server_tools + found.anthropic_only
    anthropic_only += [name for name in ANTHROPIC_ONLY_FIELDS if getattr(body, name) is not None]
    return DecodedMessages(body, request, tuple(ignored), tuple(anthropic_only))


def system_cached(tools: list[dict[str, Any]]) -> bool:
    return any(isinstance(t, dict) and t.get("cache_control") is not None for t in tools)


def _tools(raw: list[dict[str, Any]]) -> tuple[tuple[ToolSpec, ...], list[str]]:
    """Client tools as ``ToolSpec``s, and the server tools (by place and type), which have no canonical
    form."""
    tools: list[ToolSpec] = []
    server: list[str] = []
    for k, tool in enumerate(raw):
        kind = tool.get("type")
        if kind not in (None, "custom") or "input_schema" not in tool:
            server.append(f"tools.{k} ({kind or 'no input_schema'})")
            continue
        name, schema, description = tool.get("name"), tool.get("input_schema"), tool.get("description")
        if not isinstance(name, str) or not name:
            raise bad(f"tools.{k}.name: expected a tool name", f"tools.{k}.name")
        if not isinstance(schema, dict):
            raise bad(f"tools.{k}.input_schema: expected a JSON schema object", f"tools.{k}.input_schema")
        if description is not None and not isinstance(description, str):
            raise bad(f"tools.{k}.description: expected a string", f"tools.{k}.description")
        strict = tool.get("strict")
        tools.append(ToolSpec(name, description or "", schema, strict if isinstance(strict, bool) else None))
    return tuple(tools), server


def _tool_choice(choice: ToolChoiceIn | None, tools: tuple[ToolSpec, ...]) -> tuple[Any, bool | None]:
    if choice is None:
        return None, None
    parallel = False if choice.disable_parallel_tool_use else None
    if choice.type == "auto":
        return "auto", parallel
    if choice.type == "any":
        return "required", parallel
    if choice.type == "none":
        return "none", None
    if not choice.name:
        raise bad("tool_choice.name: a tool choice of type tool names the tool", "tool_choice.name")
    if tools and choice.name not in {t.name for t in tools}:
        raise bad(f"tool_choice names tool {choice.name!r}, which is not in tools", "tool_choice.name")
    return {"type": "function", "function": {"name": choice.name}}, parallel


EFFORTS = ("low", "medium", "high")


def _reasoning(body: MessagesRequest) -> Reasoning | None:
    thinking = body.thinking
    if thinking is None or thinking.type == "disabled":
        return None
    if thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise bad("thinking.budget_tokens: Field required", "thinking.budget_tokens")
        return Reasoning(budget_tokens=thinking.budget_tokens)
    effort = (body.output_config or {}).get("effort")
    if effort == "max":
        return Reasoning(effort="xhigh")
    return Reasoning(effort=effort if effort in EFFORTS else "medium")


def _response_format(body: MessagesRequest) -> ResponseFormat | None:
    spec = (body.output_config or {}).get("format") or body.output_format
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "json_schema" or not isinstance(spec.get("schema"), dict):
        raise bad("output_config.format: expected {type: json_schema, schema: {...}}", "output_config.format")
    return ResponseFormat("json_schema", "output", spec["schema"], True)
