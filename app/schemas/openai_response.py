"""OpenAI chat completions answers at the edge: a canonical ``Completion`` as a ``chat.completion`` body and
canonical ``StreamChunk``s as ``chat.completion.chunk`` events. Pure functions (the id and the ``created``
time are passed in).

Every field OpenAI returns is there: per choice ``message`` (``content``, ``refusal``, ``tool_calls``,
``annotations: []``; no ``audio``), ``logprobs`` and ``finish_reason``; the choices of ``n > 1``; ``usage`` with
``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``;
``system_fingerprint`` and ``service_tier`` (when known). Reasoning text goes out as ``reasoning_content``
(on the message, and in stream deltas), the field OpenAI-compatible servers (vLLM, DeepSeek, LiteLLM,
OpenRouter's ``reasoning`` aside) use; OpenAI's own clients ignore it. ``switchyard`` is Switchyard's
extension object (provider, cost, route), ignored by OpenAI clients.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.domain import Choice, Completion, ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def tool_call_dict(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def reasoning_text(reasoning: tuple[ReasoningPart, ...]) -> str:
    return "".join(part.text for part in reasoning if not part.redacted)


def choice_dict(choice: Choice) -> dict[str, Any]:
    """One ``choices[]`` entry. ``content`` is null when the answer is only tool calls or a refusal."""
    calls = [tool_call_dict(c) for c in choice.tool_calls]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.content if choice.content or not (calls or choice.refusal) else None,
        "refusal": choice.refusal,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = calls
    if text := reasoning_text(choice.reasoning):
        message["reasoning_content"] = text
    return {
        "index": choice.index,
        "message": message,
        "logprobs": choice.logprobs,
        "finish_reason": choice.finish_reason or ("tool_calls" if calls else "stop"),
    }


def first_choice(completion: Completion) -> Choice:
    return Choice(
        index=0,
        content=completion.content,
        finish_reason=completion.finish_reason,
        tool_calls=completion.tool_calls,
        reasoning=completion.reasoning,
        refusal=completion.refusal,
        logprobs=completion.logprobs,
    )


def completion_body(completion: Completion, *, ident: str, created: int, extra: dict[str, Any]) -> dict[str, Any]:
    """The ``chat.completion`` body; ``model`` is the catalogue name of the model that answered."""
    choices = [first_choice(completion), *completion.more_choices]
    body: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": completion.model,
        "choices": [choice_dict(c) for c in choices],
        "usage": usage_dict(completion.usage),
        "system_fingerprint": None,
    }
    service_tier = getattr(completion, "service_tier", None)
    if service_tier is not None:
        body["service_tier"] = service_tier
    body["switchyard"] = extra
    return body


# --- streams ----------------------------------------------------------------------------------------------

ROLE_DELTA: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}


def tool_delta_dict(delta: ToolCallDelta) -> dict[str, Any]:
    """A tool-call fragment: id, type and name on a call's first fragment only."""
    out: dict[str, Any] = {"index": delta.index}
    function: dict[str, Any] = {"arguments": delta.arguments}
    if delta.id is not None:
        out["id"] = delta.id
        out["type"] = "function"
    if delta.name is not None:
        function["name"] = delta.name
    out["function"] = function
    return out


def chunk_delta(chunk: StreamChunk) -> dict[str, Any] | None:
    """The ``delta`` of a chunk's output (content, reasoning, refusal, tool calls); None if it has none."""
    delta: dict[str, Any] = {}
    if chunk.reasoning:
        delta["reasoning_content"] = chunk.reasoning
    if chunk.delta:
        delta["content"] = chunk.delta
    if chunk.refusal:
        delta["refusal"] = chunk.refusal
    if chunk.tool_calls:
        delta["tool_calls"] = [tool_delta_dict(d) for d in chunk.tool_calls]
    return delta or None


class ChunkEncoder:
    """``chat.completion.chunk`` bodies of one stream (same id, created and model on every chunk).
    With ``include_usage`` every chunk carries ``usage: null`` but the last, usage-only one."""

    def __init__(self, ident: str, created: int, model: str, *, include_usage: bool) -> None:
        self.ident, self.created, self.model, self.include_usage = ident, created, model, include_usage
        self.started: set[int] = set()

    def body(self, choices: list[dict[str, Any]], usage: Usage | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            out["usage"] = usage_dict(usage) if usage is not None else None
        return out

    def choice(self, index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> dict:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    def role(self, index: int = 0) -> dict[str, Any]:
        """The opening chunk of choice ``index``: the assistant role, empty content."""
        self.started.add(index)
        return self.body([self.choice(index, dict(ROLE_DELTA))])

    def encode(self, chunk: StreamChunk) -> list[dict[str, Any]]:
        """The chunk bodies of one canonical chunk: a role chunk for a choice seen first, its output, then
        (on the closing chunk) the finish and, when asked, the usage-only chunk (``choices: []``)."""
        out: list[dict[str, Any]] = []
        if chunk.choice not in self.started:
            out.append(self.role(chunk.choice))
        delta = chunk_delta(chunk)
        if delta is not None or chunk.logprobs is not None:
            out.append(self.body([self.choice(chunk.choice, delta or {}, logprobs=chunk.logprobs)]))
        if chunk.finish_reason is not None:
            out.append(self.body([self.choice(chunk.choice, {}, chunk.finish_reason)]))
            for index, finish in chunk.other_finishes:  # n > 1: every other choice ends too
                out.append(self.body([self.choice(index, {}, finish)]))
            if self.include_usage:
                out.append(self.body([], chunk.usage or Usage()))
        return out
