"""The canonical request and response: vendor-neutral frozen dataclasses that flow between the layers.

Front-ends decode their wire protocol into a ``ChatRequest``; routing reads it; orchestration hands it to a
provider, whose codec encodes it for one vendor and decodes the vendor's answer into a ``Completion`` or a
stream of ``StreamChunk`` whose last chunk carries the finish reason and the usage.

``Message.content`` is always the message's text (what routing and token estimates read); ``parts`` holds
the full content in order when it is more than text (images, files). ``ChatRequest.source`` keeps the
client's original body for the same-protocol pass-through (the upstream gets it with only the model and
gateway-owned fields replaced).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

from app.records import record

Role = Literal["system", "user", "assistant", "tool"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


# --- content -----------------------------------------------------------------------------------------


@record(slots=True)
class TextPart:
    text: str
    cache_control: dict[str, Any] | None = None  # an Anthropic-style cache breakpoint on this part


@record(slots=True)
class ImagePart:
    """An image by URL (``https:``) or inline (``data`` is base64, ``media_type`` e.g. ``image/png``)."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None  # OpenAI's auto | low | high


@record(slots=True)
class FilePart:
    """A document (PDF and the like): inline base64 ``data`` with its ``media_type``, or a URL / file id."""

    data: str | None = None
    media_type: str | None = None
    filename: str | None = None
    url: str | None = None
    file_id: str | None = None


ContentPart = TextPart | ImagePart | FilePart


@record(slots=True)
class ReasoningPart:
    """Reasoning a model produced: its text (or summary), the vendor's signature or encrypted content that
    must travel back unchanged in the next turn, and ``redacted`` for reasoning the vendor hid."""

    text: str = ""
    signature: str | None = None
    redacted: bool = False
    provider: str | None = None  # whose signature it is (signatures only mean something to their vendor)


@record(slots=True)
class ToolCall:
    """A complete tool call made by the assistant; ``arguments`` is the JSON text."""

    id: str
    name: str
    arguments: str


@record(slots=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON Schema object; ``strict`` asks the vendor
    to keep the arguments to the schema exactly."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool | None = None


@record(slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    parts: tuple[ContentPart, ...] = ()  # the full content when it is more than one plain text
    reasoning: tuple[ReasoningPart, ...] = ()  # an assistant turn's reasoning, carried back to its vendor
    is_error: bool = False  # a tool result that reports a failure

    @property
    def content_parts(self) -> tuple[ContentPart, ...]:
        """The content as parts: ``parts``, or the text as one part (nothing for an empty text)."""
        if self.parts:
            return self.parts
        return (TextPart(self.content),) if self.content else ()

    @property
    def has_media(self) -> bool:
        return any(not isinstance(p, TextPart) for p in self.parts)


# --- request options -----------------------------------------------------------------------------------


@record(slots=True)
class ResponseFormat:
    """``text``, ``json_object`` (any JSON object) or ``json_schema`` (``schema``, ``name``, ``strict``)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@record(slots=True)
class Reasoning:
    """How much the model should think: an effort level, or a token budget (Anthropic's and Gemini's
    form); ``summary`` asks for a reasoning summary where the vendor offers one."""

    effort: ReasoningEffort | None = None
    budget_tokens: int | None = None
    summary: str | None = None


@record(slots=True)
class SourceBody:
    """The client's request as it arrived, for the same-protocol pass-through."""

    protocol: str  # "openai.chat", later "anthropic.messages", "openai.responses"
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # protocol headers worth forwarding (betas)
    raw: bytes | None = None  # the bytes ``body`` was parsed from (kept where unchanged: providers/json_splice.py)


# Options that never change the meaning of an answer: forwarded where the target honours them, else dropped
# and named in the ``x-switchyard-dropped-params`` response header.
DROPPABLE_OPTIONS = ("store", "prompt_cache_key", "safety_identifier", "service_tier", "user", "metadata")


@record(slots=True)
class ChatRequest:
    """One chat completion as the gateway sees it, whatever API it came in through."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "none" | "required" | {"type": "function", ...}
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    n: int = 1
    verbosity: str | None = None
    # droppable (see DROPPABLE_OPTIONS)
    store: bool | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    source: SourceBody | None = None

    @property
    def prompt_text(self) -> str:
        """The text of the user turns, joined; what routing features look at."""
        return "\n".join(m.content for m in self.messages if m.role == "user")

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


# --- answers -------------------------------------------------------------------------------------------


@record(slots=True)
class Usage:
    """Tokens of one call. ``input_tokens`` counts every input token, cached ones included (OpenAI's
    convention: ``cached_input_tokens`` and ``cache_write_tokens`` are parts of it); ``reasoning_tokens``
    are part of ``output_tokens``. ``estimated``: the vendor sent no usage and these are the gateway's
    estimate."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.estimated or other.estimated,
        )


@record(slots=True)
class Choice:
    """One alternative answer (``n > 1``); the first one is the ``Completion``'s own fields."""

    index: int
    content: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: tuple[ReasoningPart, ...] = ()
    refusal: str | None = None
    logprobs: Any = None


@record(slots=True)
class Passthrough:
    """The upstream's answer exactly as it was sent (same-protocol pass-through)."""

    protocol: str
    body: bytes
    content_type: str = "application/json"


@record(slots=True)
class Completion:
    """One model's answer. ``model`` is the catalogue name; ``cost`` is None when the price is unknown."""

    content: str
    model: str
    provider: str
    usage: Usage
    latency_ms: float
    cost: float | None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    upstream_model: str | None = None
    reasoning: tuple[ReasoningPart, ...] = ()
    refusal: str | None = None
    logprobs: Any = None  # OpenAI's shape, whoever answered: {"content": [{token, logprob, bytes, top_logprobs}]}
    more_choices: tuple[Choice, ...] = ()  # choices 1..n-1 when n > 1
    passthrough: Passthrough | None = None
    dropped_params: tuple[str, ...] = ()  # droppable options the target could not honour (not sent)


@record(slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same ``index`` concatenate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@record(slots=True)
class StreamChunk:
    """A piece of a streamed answer. The last chunk of every stream has ``usage`` and ``finish_reason``.

    ``reasoning`` is reasoning text; ``signature`` a reasoning signature (Anthropic ``signature_delta``,
    a Gemini thought signature) that closes the current reasoning block; ``redacted`` one whole block of
    reasoning the vendor hid (Anthropic's ``redacted_thinking`` data, opaque, to travel back unchanged).
    ``raw`` holds the upstream's SSE event bytes as received, for the same-protocol pass-through
    (``raw_usage_only``: that event only carries the usage the gateway asked for, and is not forwarded
    unless the client asked too).
    """

    delta: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
    signature: str | None = None
    refusal: str = ""
    logprobs: Any = None
    choice: int = 0
    other_finishes: tuple[tuple[int, str], ...] = ()  # on the closing chunk with n > 1: (choice, finish) of 1..n-1
    raw: bytes | None = None
    raw_usage_only: bool = False
    redacted: str | None = None

    @property
    def has_output(self) -> bool:
        """Whether this chunk carries model output (text, reasoning, a tool call, a refusal)."""
        return bool(self.delta or self.tool_calls or self.reasoning or self.signature or self.refusal or self.redacted)
