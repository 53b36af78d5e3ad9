"""OpenAI's ``POST /v1/embeddings``, also spoken by OpenAI-compatible servers (vLLM, Ollama, llama.cpp
server, LM Studio).

Request: the client's own body with only ``model`` replaced (and, for one part of a split batch, ``input``),
so every field Switchyard does not know still reaches the upstream; the gateway's own fields
(``task_type``) are removed. Answer: ``{"data": [{"index", "embedding"}], "model", "usage"}``; the vectors
are kept as sent (floats or base64). When the answer is the whole request's and its vectors are in the
encoding the client asked for, its bytes go back as they came. A compatible server that reports no usage
(or zero tokens) gets an estimate from the service; one that ignores ``encoding_format: base64`` and sends
floats has them encoded by the gateway.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from app.domain import Usage
from app.embeddings.types import EmbeddedBatch, EmbeddingRequest, Vector
from app.embeddings.vectors import check_vector
from app.providers.base import HttpAnswer, HttpCall, ModelTarget
from app.providers.errors import malformed

PATH = "/embeddings"
GATEWAY_FIELDS = frozenset({"task_type"})  # Switchyard's own (Gemini's task type): never sent to OpenAI


def _input(request: EmbeddingRequest) -> Any:
    return [list(t) for t in request.inputs] if request.tokens else list(request.inputs)


class OpenAIEmbeddings:
    """OpenAI's embeddings API (2048 inputs and 300k tokens per request)."""

    kind: ClassVar[str] = "openai"
    max_inputs: ClassVar[int] = 2048
    max_tokens: ClassVar[int] = 250_000  # below OpenAI's 300k per request: the gateway's count is an estimate
    takes_tokens: ClassVar[bool] = True

    def body(self, request: EmbeddingRequest, target: ModelTarget, *, whole: bool) -> dict[str, Any]:
        """The client's body with only the gateway-owned fields replaced."""
        if request.source:
            body = {k: v for k, v in request.source.items() if k not in GATEWAY_FIELDS}
        else:
            body = {"encoding_format": request.encoding_format}
            if request.dimensions is not None:
                body["dimensions"] = request.dimensions
            if request.user is not None:
                body["user"] = request.user
        body["model"] = target.upstream_model
        if not whole or "input" not in body:
            body["input"] = _input(request)
        return body

    def encode(self, request: EmbeddingRequest, target: ModelTarget, *, whole: bool) -> HttpCall:
        return HttpCall(path=PATH, body=orjson.dumps(self.body(request, target, whole=whole)))

    def decode(
        self, answer: HttpAnswer, request: EmbeddingRequest, target: ModelTarget, *, whole: bool
    ) -> EmbeddedBatch:
        where = self.kind, target.name
        try:
            payload = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise malformed(*where, "the answer is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise malformed(*where, "the answer has no data list")
        vectors = _vectors(payload["data"], len(request.inputs), where)
        model = payload.get("model")
        wanted = str if request.encoding_format == "base64" else list
        as_sent = whole and all(isinstance(v, wanted) for v in vectors)
        return EmbeddedBatch(
            vectors=vectors,
            usage=_usage(payload.get("usage")),
            upstream_model=model if isinstance(model, str) else None,
            body=answer.body if as_sent else None,
        )

    def ignored(self, request: EmbeddingRequest) -> tuple[str, ...]:
        return ("task_type",) if request.task_type is not None else ()

    def value_bytes(self, request: EmbeddingRequest) -> int:
        return 6 if request.encoding_format == "base64" else 24  # "-0.0069292834, " and the like


def _vectors(data: list[Any], count: int, where: tuple[str, str]) -> tuple[Vector, ...]:
    if len(data) != count:
        raise malformed(*where, f"{len(data)} embeddings for {count} inputs")
    found: list[Vector | None] = [None] * count
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise malformed(*where, "an embedding is not an object")
        index = item.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count or found[index] is not None:
            raise malformed(*where, "the embeddings' indexes are not 0..n-1")
        try:
            found[index] = check_vector(item.get("embedding"))
        except ValueError as exc:
            raise malformed(*where, str(exc)) from None
    return tuple(v for v in found if v is not None)


def _usage(usage: object) -> Usage | None:
    """``prompt_tokens`` (embeddings have no output tokens); None when absent or 0 (not reported)."""
    if not isinstance(usage, dict):
        return None
    tokens = usage.get("prompt_tokens")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        return None
    return Usage(tokens, 0)


class OpenAICompatibleEmbeddings(OpenAIEmbeddings):
    """An OpenAI-compatible server's ``/v1/embeddings`` (the same wire; usage and base64 may be missing)."""

    kind: ClassVar[str] = "openai_compatible"


OPENAI = OpenAIEmbeddings()
OPENAI_COMPATIBLE = OpenAICompatibleEmbeddings()
