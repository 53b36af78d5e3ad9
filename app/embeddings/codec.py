"""The embedding codec contract, and the codec of each provider kind.

A codec is pure: it turns a canonical ``EmbeddingRequest`` (one batch within its ``max_inputs``) into an
``HttpCall`` and an upstream answer back into an ``EmbeddedBatch``; it never does I/O. Error answers are read
by the provider's chat codec (``app.providers.registry.codec_for``), which knows each vendor's error body.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from app.embeddings.types import EmbeddedBatch, EmbeddingRequest
from app.errors import UpstreamError
from app.providers.base import HttpAnswer, HttpCall, ModelTarget
from app.providers.registry import codec_for
from app.providers.transport import DEFAULT_MAX_BODY_BYTES


class EmbeddingCodec(Protocol):
    """One vendor's embeddings API."""

    kind: ClassVar[str]
    max_inputs: ClassVar[int]  # inputs per upstream request (larger batches are split)
    max_tokens: ClassVar[int]  # estimated input tokens per upstream request
    takes_tokens: ClassVar[bool]  # token arrays as input

    def encode(self, request: EmbeddingRequest, target: ModelTarget, *, whole: bool) -> HttpCall:
        """The upstream request of one batch (``whole``: the batch is the client's whole request)."""
        ...

    def decode(
        self, answer: HttpAnswer, request: EmbeddingRequest, target: ModelTarget, *, whole: bool
    ) -> EmbeddedBatch:
        """A 2xx answer, one vector per input in input order; ``UpstreamError`` if it is malformed."""
        ...

    def ignored(self, request: EmbeddingRequest) -> tuple[str, ...]:
        """The client's fields this target does not honour (named in ``x-switchyard-ignored-params``)."""
        ...

    def value_bytes(self, request: EmbeddingRequest) -> int:
        """About how many bytes one vector value takes in the vendor's answer (JSON float or base64)."""
        ...


ANSWER_BUDGET = DEFAULT_MAX_BODY_BYTES * 3 // 4  # an upstream answer stays well inside the transport's bound


def inputs_per_call(codec: EmbeddingCodec, request: EmbeddingRequest, dimensions: int | None) -> int:
    """How many inputs one upstream call may carry: the vendor's limit, and, when the vector size is known
    (the request's ``dimensions`` or the catalogue's), few enough that the answer fits the transport's body
    bound (2048 vectors of 1536 JSON floats are about 60 MB)."""
    size = request.dimensions or dimensions
    if size is None:
        return codec.max_inputs
    per_vector = size * codec.value_bytes(request) + 64
    return max(1, min(codec.max_inputs, ANSWER_BUDGET // per_vector))


def error(answer: HttpAnswer, target: ModelTarget) -> UpstreamError:
    """The typed error of a non-2xx answer, read as the provider's chat codec reads its vendor's errors."""
    return codec_for(target.provider).error(answer, target)


def embedding_codec(provider: str) -> EmbeddingCodec | None:
    """The embeddings codec of a provider kind, or None (the provider has no embeddings API)."""
    from app.embeddings.gemini import GEMINI
    from app.embeddings.openai import OPENAI, OPENAI_COMPATIBLE

    codecs: dict[str, EmbeddingCodec] = {"openai": OPENAI, "openai_compatible": OPENAI_COMPATIBLE, "google": GEMINI}
    return codecs.get(provider)
