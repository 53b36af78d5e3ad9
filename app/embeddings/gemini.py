"""Gemini's ``models/{model}:batchEmbedContents`` (100 texts per request).

Request: ``{"requests": [{"model": "models/{m}", "content": {"parts": [{"text"}]}, "outputDimensionality",
"taskType"}]}``: ``dimensions`` becomes ``outputDimensionality``, the gateway's ``task_type`` extension
Gemini's ``taskType``. Answer: ``{"embeddings": [{"values": [...]}]}`` in input order; Gemini reports no
token usage (the service estimates it). Token arrays cannot be sent (``takes_tokens`` False); ``user`` and
unknown fields are ignored and named.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from app.embeddings.types import EmbeddedBatch, EmbeddingRequest, Vector
from app.embeddings.vectors import check_vector
from app.providers.base import HttpAnswer, HttpCall, ModelTarget
from app.providers.errors import malformed
from app.providers.google import model_path

TASK_TYPES = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)


class GeminiEmbeddings:
    """The Gemini API's batch embeddings."""

    kind: ClassVar[str] = "google"
    max_inputs: ClassVar[int] = 100
    max_tokens: ClassVar[int] = 1_000_000  # Gemini limits each text (2048 tokens), not the request
    takes_tokens: ClassVar[bool] = False

    def body(self, request: EmbeddingRequest, target: ModelTarget) -> dict[str, Any]:
        model = "models/" + target.upstream_model.removeprefix("models/")
        options: dict[str, Any] = {}
        if request.dimensions is not None:
            options["outputDimensionality"] = request.dimensions
        if request.task_type is not None:
            options["taskType"] = request.task_type
        return {
            "requests": [{"model": model, "content": {"parts": [{"text": text}]}, **options} for text in request.inputs]
        }

    def encode(self, request: EmbeddingRequest, target: ModelTarget, *, whole: bool) -> HttpCall:
        path = model_path(target.upstream_model, "batchEmbedContents")
        return HttpCall(path=path, body=orjson.dumps(self.body(request, target)))

    def decode(
        self, answer: HttpAnswer, request: EmbeddingRequest, target: ModelTarget, *, whole: bool
    ) -> EmbeddedBatch:
        where = self.kind, target.name
        try:
            payload = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise malformed(*where, "the answer is not JSON") from None
        items = payload.get("embeddings") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise malformed(*where, "the answer has no embeddings list")
        if len(items) != len(request.inputs):
            raise malformed(*where, f"{len(items)} embeddings for {len(request.inputs)} inputs")
        vectors: list[Vector] = []
        for item in items:
            values = item.get("values") if isinstance(item, dict) else None
            if isinstance(values, str):
                raise malformed(*where, "an embedding's values are not a list")
            try:
                vectors.append(check_vector(values))
            except ValueError as exc:
                raise malformed(*where, str(exc)) from None
        return EmbeddedBatch(vectors=tuple(vectors), usage=None)

    def ignored(self, request: EmbeddingRequest) -> tuple[str, ...]:
        return ("user",) * (request.user is not None) + request.ignored

    def value_bytes(self, request: EmbeddingRequest) -> int:
        return 24  # Gemini always answers JSON floats


GEMINI = GeminiEmbeddings()
