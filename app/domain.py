"""Internal, vendor-neutral value types that flow between the layers (frozen dataclasses).

The API layer builds a ``ChatRequest``; routing reads it; orchestration hands it to provider adapters,
which answer a ``Completion`` or a stream of ``StreamChunk`` whose last chunk carries the usage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call made by the assistant; ``arguments`` is the JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion as the gateway sees it, whatever API it came in through."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)

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


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same ``index`` concatenate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a streamed answer. The last chunk of every stream has ``usage`` and ``finish_reason``."""

    delta: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
