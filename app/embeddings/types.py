"""The canonical embedding request and what a codec reads from one upstream answer (frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, replace
from typing import Any, Literal

from app.domain import Usage
from app.records import record
from app.tokens import estimate_tokens

EncodingFormat = Literal["float", "base64"]
Inputs = tuple[str, ...] | tuple[tuple[int, ...], ...]
Vector = list[float] | str  # floats, or OpenAI's base64 of little-endian float32 exactly as the upstream sent it


def input_tokens(item: str | tuple[int, ...]) -> int:
    """The input tokens of one input: a token array's length, else the ``app.tokens`` heuristic."""
    return estimate_tokens(item) if isinstance(item, str) else len(item)


@record(slots=True)
class EmbeddingRequest:
    """What the client asked for. ``inputs`` are texts, or token arrays when ``tokens``; ``source`` is the
    client's body (for the pass-through to OpenAI-protocol upstreams); ``ignored`` the fields Switchyard
    does not know (a translated target ignores them)."""

    inputs: Inputs
    tokens: bool = False
    dimensions: int | None = None
    encoding_format: EncodingFormat = "float"
    user: str | None = None
    task_type: str | None = None
    source: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def batches(self, max_inputs: int, max_tokens: int | None = None) -> tuple[EmbeddingRequest, ...]:
        """This request split into requests of at most ``max_inputs`` inputs and (but for a single input)
        at most ``max_tokens`` estimated tokens each, in input order."""
        if len(self.inputs) <= max_inputs and max_tokens is None:
            return (self,)
        groups: list[list[Any]] = [[]]
        tokens = 0
        for item in self.inputs:
            size = input_tokens(item)
            current = groups[-1]
            if current and (len(current) >= max_inputs or (max_tokens is not None and tokens + size > max_tokens)):
                groups.append([])
                tokens = 0
            groups[-1].append(item)
            tokens += size
        if len(groups) == 1:
            return (self,)
        return tuple(replace(self, inputs=tuple(group)) for group in groups)


@record(slots=True)
class EmbeddedBatch:
    """One upstream answer: a vector per input, in input order; ``usage`` None when the upstream reports
    none; ``body`` the answer's bytes when they can go back to the client as sent."""

    vectors: tuple[Vector, ...]
    usage: Usage | None
    upstream_model: str | None = None
    body: bytes | None = None


@record(slots=True)
class Embeddings:
    """The whole answer of one model, reassembled: vectors in input order, usage and cost summed over its
    upstream calls; ``body`` the one upstream answer's bytes when it can be returned as sent."""

    model: str
    provider: str
    vectors: tuple[Vector, ...]
    usage: Usage
    cost: float | None
    latency_ms: float
    calls: int = 1
    body: bytes | None = None
