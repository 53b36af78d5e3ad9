"""OpenAI Responses API requests at the edge (``POST /v1/responses``): the body model and its decoding into
the canonical ``ChatRequest``.

``input`` (a string or items, ``app.schemas.responses_items``), ``instructions`` (the first system turn),
function ``tools`` (those of a ``namespace`` tool too, flattened), ``tool_choice`` (``auto``, ``none``,
``required``, a named function, ``allowed_tools``), ``parallel_tool_calls``, ``text.format``
(``json_schema``, ``json_object``) and ``text.verbosity``, ``reasoning`` (effort, summary),
``max_output_tokens``, ``temperature``, ``top_p``; ``store``, ``metadata``, ``previous_response_id`` and
``include`` are the gateway's (``app.responses``), and the droppable options (``user``,
``safety_identifier``, ``prompt_cache_key``, ``service_tier``) go where the target takes them.

What has no canonical form (built-in tools such as ``web_search``, a built-in ``tool_choice``, item types
such as ``item_reference``, ``background``, ``conversation``, ``prompt``) is kept for an OpenAI upstream,
which gets the client's body as sent (``DecodedResponses.passthrough_only``); any other target is a 400
naming the field. Unknown top-level fields go to OpenAI as sent and are ignored elsewhere (named in
``x-switchyard-ignored-params``).
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from app.api.errors import invalid_request
from app.domain import ChatRequest, Message, Reasoning, ResponseFormat, SourceBody, ToolSpec
from app.records import record
from app.schemas.openai_content import In, bad
from app.schemas.openai_request import _header_safe, _metadata
from app.schemas.responses_items import decode_items

PROTOCOL = "openai.responses"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
IGNORED_KNOWN = ("truncation", "top_logprobs", "max_tool_calls", "stream_options", "prompt_cache_retention")
PASSTHROUGH_FIELDS = ("background", "conversation", "prompt")


class TextFormatIn(In):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextIn(In):
    format: TextFormatIn | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningIn(In):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


MetadataValue = Annotated[str, Field(max_length=512)]


class ResponsesRequest(In):
    """The Responses API request; ``model_extra`` holds the fields Switchyard does not know."""

    model: str = Field(min_length=1, max_length=256)
    input: str | list[Any] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=1024)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextIn | None = None
    reasoning: ReasoningIn | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=100_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    metadata: dict[str, MetadataValue] | None = Field(default=None, max_length=16)
    store: bool | None = None
    stream: bool | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=256)
    include: list[str] | None = None
    user: str | None = Field(default=None, max_length=512)
    safety_identifier: str | None = Field(default=None, max_length=256)
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    service_tier: str | None = Field(default=None, max_length=64)
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tool_calls: int | None = Field(default=None, ge=1)
    stream_options: dict[str, Any] | None = None
    prompt_cache_retention: str | None = Field(default=None, max_length=64)
    background: bool | None = None
    conversation: Any = None
    prompt: Any = None


@record(slots=True)
class DecodedResponses:
    """A decoded request: the body model, the body as sent, its input as items, the canonical request (of
    this turn alone: ``with_history`` puts a stored conversation before it), the fields a translated
    target ignores, and the fields only an OpenAI upstream honours."""

    body: ResponsesRequest
    data: dict[str, Any]
    items: tuple[dict[str, Any], ...]
    request: ChatRequest
    ignored: tuple[str, ...] = ()
    passthrough_only: tuple[str, ...] = ()
    namespaces: dict[str, str] = field(default_factory=dict)  # function name -> its namespace tool

    @property
    def model(self) -> str:
        return self.body.model

    @property
    def stream(self) -> bool:
        return bool(self.body.stream)

    @property
    def store(self) -> bool:
        return self.body.store is not False

    @property
    def encrypted_reasoning(self) -> bool:
        return ENCRYPTED_REASONING in (self.body.include or ())

    def with_history(self, history: list[dict[str, Any]]) -> DecodedResponses:
        """This turn continuing a stored conversation (``previous_response_id``): the canonical request and
        the pass-through body get the earlier items before this turn's input (an upstream need not know
        the id: the turn before may have been served by another provider)."""
        if not history:
            return self
        earlier = decode_items(history, "previous_response")
        system = [m for m in self.request.messages[:1] if m.role == "system" and self.body.instructions is not None]
        rest = self.request.messages[len(system) :]
        messages = (*system, *earlier.messages, *rest)
        source = {k: v for k, v in self.data.items() if k != "previous_response_id"}
        source["input"] = [*history, *self.items]
        foreign = tuple(_foreign(t) for t in earlier.foreign_items)
        request = replace(self.request, messages=messages, source=SourceBody(PROTOCOL, source))
        return replace(self, request=request, passthrough_only=self.passthrough_only + foreign)


def input_items(value: str | list[Any] | None) -> tuple[dict[str, Any], ...]:
    """``input`` as items: a string is one user message."""
    if value is None:
        return ()
    if isinstance(value, str):
        return ({"type": "message", "role": "user", "content": value},)
    return tuple(value)


def decode_responses(data: dict[str, Any], raw: bytes | None = None) -> DecodedResponses:
    """The canonical request of a Responses body; a 400 ``InvalidRequestError`` names the field of anything
    invalid."""
    try:
        body = ResponsesRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None
    if body.input is None and body.previous_response_id is None and body.prompt is None:
        raise bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    items = input_items(body.input)
    decoded = decode_items(list(items))
    passthrough_only = [_foreign(t) for t in decoded.foreign_items]
    namespaces: dict[str, str] = {}
    tools = _tools(body.tools or [], passthrough_only, namespaces)
    tool_choice = _tool_choice(body.tool_choice, tools, passthrough_only)
    passthrough_only += [name for name in PASSTHROUGH_FIELDS if getattr(body, name) not in (None, False)]
    messages: tuple[Message, ...] = decoded.messages
    if body.instructions is not None:
        messages = (Message("system", body.instructions), *messages)
    if tool_choice in ("auto", "required") and isinstance(body.tool_choice, dict):
        allowed = {t["name"] for t in body.tool_choice.get("tools") or () if isinstance(t, dict) and "name" in t}
        tools = tuple(t for t in tools if t.name in allowed)
    request = ChatRequest(
        messages=messages,
        max_tokens=body.max_output_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        tools=tools,
        tool_choice=tool_choice if tools else None,
        parallel_tool_calls=body.parallel_tool_calls if tools else None,
        response_format=_text_format(body.text),
        reasoning=_reasoning(body.reasoning),
        verbosity=body.text.verbosity if body.text is not None else None,
        prompt_cache_key=body.prompt_cache_key,
        safety_identifier=body.safety_identifier,
        service_tier=body.service_tier,
        user=body.user,
        source=SourceBody(PROTOCOL, data, raw=raw),
    )
    _metadata(body.metadata)
    ignored = [*_header_safe(body.model_extra or {})] + [n for n in IGNORED_KNOWN if getattr(body, n) is not None]
    passthrough = tuple(dict.fromkeys(passthrough_only))
    return DecodedResponses(body, data, items, request, tuple(ignored), passthrough, namespaces)


def _foreign(kind: str) -> str:
    return kind if kind.startswith("input_") else f"input item {kind}"


def _tools(
    tools: list[dict[str, Any]], passthrough_only: list[str], namespaces: dict[str, str], where: str = "tools"
) -> tuple[ToolSpec, ...]:
    """The function tools; a ``namespace`` tool's functions are flattened (``namespaces`` says whose they
    are, for the answer's ``function_call.namespace``); other tool types are OpenAI's own."""
    specs: list[ToolSpec] = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise bad(f"{where}.{k}: a tool is an object", f"{where}.{k}", "invalid_type")
        kind = tool.get("type")
        space = tool.get("name")
        if kind == "namespace" and where == "tools" and isinstance(space, str) and isinstance(tool.get("tools"), list):
            inner = _tools(tool["tools"], passthrough_only, namespaces, f"tools.{k}.tools")
            namespaces.update((t.name, space) for t in inner)
            specs += inner
            continue
        if kind != "function":
            passthrough_only.append(f"tools ({str(kind)[:64]})")
            continue
        at = f"{where}.{k}"
        name, parameters = tool.get("name"), tool.get("parameters")
        if not isinstance(name, str) or not name:
            raise bad(f"{at}.name: a function tool needs a name", f"{at}.name", "missing_required_parameter")
        if parameters is not None and not isinstance(parameters, dict):
            raise bad(f"{at}.parameters: expected a JSON Schema object", f"{at}.parameters", "invalid_type")
        description, strict = tool.get("description"), tool.get("strict")
        if description is not None and not isinstance(description, str):
            raise bad(f"{at}.description: expected a string", f"{at}.description", "invalid_type")
        if strict is not None and not isinstance(strict, bool):
            raise bad(f"{at}.strict: expected a boolean", f"{at}.strict", "invalid_type")
        specs.append(ToolSpec(name, description or "", parameters or {}, strict))
    if where == "tools" and len({t.name for t in specs}) < len(specs):
        passthrough_only.append("tools (a function name used twice)")  # translated, the calls would be ambiguous
    return tuple(specs)


def _tool_choice(
    choice: str | dict[str, Any] | None, tools: tuple[ToolSpec, ...], passthrough_only: list[str]
) -> str | dict[str, Any] | None:
    """The canonical tool choice (OpenAI chat's form); built-in ones are for OpenAI upstreams only."""
    names = {t.name for t in tools}
    if choice is None or isinstance(choice, str):
        if choice == "required" and not tools and not passthrough_only:
            raise bad("tool_choice 'required' needs tools", "tool_choice")
        return choice
    kind = choice.get("type")
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str) or name not in names:
            raise bad(f"tool_choice names function {name!r}, which is not in tools", "tool_choice.name")
        return {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise bad("tool_choice.mode: expected auto or required", "tool_choice.mode")
        for k, tool in enumerate(choice.get("tools") or ()):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                passthrough_only.append("tool_choice")
            elif tool.get("name") not in names:
                raise bad(f"tool_choice.tools.{k} names no function in tools", f"tool_choice.tools.{k}")
        return str(mode)
    passthrough_only.append("tool_choice")
    return None


def _text_format(text: TextIn | None) -> ResponseFormat | None:
    spec = text.format if text is not None else None
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return ResponseFormat("json_object")
    if spec.schema_ is None:
        raise bad("text.format json_schema needs 'schema'", "text.format.schema", "missing_required_parameter")
    return ResponseFormat("json_schema", spec.name, spec.schema_, spec.strict, spec.description)


def _reasoning(reasoning: ReasoningIn | None) -> Reasoning | None:
    if reasoning is None:
        return None
    if reasoning.effort is None:  # a summary alone asks for no thinking
        return None
    return Reasoning(effort=reasoning.effort, summary=reasoning.summary or reasoning.generate_summary)
