"""Embeddings wire formats for the fake upstream: OpenAI's ``POST /v1/embeddings`` (floats or base64, as
OpenAI-compatible servers speak it too) and Gemini's ``models/{m}:batchEmbedContents`` and
``:embedContent``, with the vendors' own error bodies.

Vectors are deterministic: a function of the input (text or token array) and the vector size, unit length,
every value ``k / 2**15`` so float32 holds it exactly (floats and base64 of one input compare equal). The
size is ``dimensions`` / ``outputDimensionality`` when asked, else the model's (``DIMENSIONS``, 8 for models
it does not know). OpenAI refuses what OpenAI refuses: more than 2048 inputs, an empty string, ``dimensions``
for ``text-embedding-ada-002``; Gemini more than 100 requests per batch. Usage: OpenAI's ``prompt_tokens``
is the inputs' word count (a token array's length), or the scripted ``Reply.input_tokens``; Gemini reports
none, as the real API.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes import gemini_wire, openai_wire
from tests.fakes.scripts import ParsedRequest, Plan, StreamEvent, content_text, word_count

DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "text-embedding-004": 768,
    "gemini-embedding-001": 3072,
}
DEFAULT_DIMENSIONS = 8
OPENAI_MAX_INPUTS = 2048
GEMINI_MAX_REQUESTS = 100
INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


def vector(item: str | list[int], size: int) -> list[float]:
    """The fake's embedding of one input: deterministic, unit length, exact in float32."""
    seed = item.encode() if isinstance(item, str) else b"tokens:" + ",".join(map(str, item)).encode()
    raw = b""
    counter = 0
    while len(raw) < 2 * size:
        raw += hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        counter += 1
    values = [v / 32768 for v in struct.unpack(f"<{size}h", raw[: 2 * size])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm * 32768) / 32768 for v in values]


def to_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


@dataclass(frozen=True)
class EmbedRequest(ParsedRequest):
    """An embeddings request as the fake reads it."""

    inputs: tuple[Any, ...] = ()
    dimensions: int | None = None
    encoding_format: str = "float"
    method: str = "embeddings"
    problem: str | None = None  # what the real service would refuse


_CURRENT: contextvars.ContextVar[EmbedRequest | None] = contextvars.ContextVar("embed_request", default=None)


def _size(parsed: EmbedRequest) -> int:
    return parsed.dimensions or DIMENSIONS.get(parsed.model.removeprefix("models/"), DEFAULT_DIMENSIONS)


def _input_text(inputs: tuple[Any, ...]) -> str:
    return " ".join(i for i in inputs if isinstance(i, str))


def _tokens(parsed: EmbedRequest) -> int:
    return sum(word_count(i) if isinstance(i, str) else len(i) for i in parsed.inputs)


class OpenAIEmbeddingsWire:
    """OpenAI ``/v1/embeddings`` (a wire module for ``tests.fakes.player``)."""

    VENDOR = "openai"
    SSE_MEDIA_TYPE = openai_wire.SSE_MEDIA_TYPE
    api_key = staticmethod(openai_wire.api_key)
    response_headers = staticmethod(openai_wire.response_headers)
    error = staticmethod(openai_wire.error)
    auth_error = staticmethod(openai_wire.auth_error)

    @staticmethod
    def parse(body: Mapping[str, Any]) -> EmbedRequest:
        raw = body.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs: tuple[Any, ...] = (raw,)
        else:
            inputs = tuple(raw) if isinstance(raw, list) else ()
        model = str(body.get("model", ""))
        dimensions = body.get("dimensions")
        problem = None
        if not inputs or len(inputs) > OPENAI_MAX_INPUTS or any(i in ("", []) for i in inputs):
            problem = INVALID_INPUT
        elif dimensions is not None and model == "text-embedding-ada-002":
            problem = "This model does not support specifying dimensions."
        parsed = EmbedRequest(
            model=model,
            stream=False,
            last_user_text="",
            input_text=_input_text(inputs),
            inputs=inputs,
            dimensions=dimensions if isinstance(dimensions, int) else None,
            encoding_format=str(body.get("encoding_format") or "float"),
            problem=problem,
        )
        _CURRENT.set(parsed)
        return parsed

    @staticmethod
    def completion(plan: Plan) -> dict[str, Any]:
        parsed = _CURRENT.get() or EmbedRequest(model=plan.model, stream=False, last_user_text="", input_text="")
        size = _size(parsed)
        base64_wanted = parsed.encoding_format == "base64"
        data = []
        for index, item in enumerate(parsed.inputs):
            values = vector(item, size)
            data.append(
                {"object": "embedding", "index": index, "embedding": to_base64(values) if base64_wanted else values}
            )
        # the plan counts words of the texts only; unless a reply scripted its own count, token arrays count too
        tokens = _tokens(parsed) if plan.input_tokens == word_count(parsed.input_text) else plan.input_tokens
        return {
            "object": "list",
            "data": data,
            "model": parsed.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @staticmethod
    def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
        return []


class GeminiEmbeddingsWire:
    """Gemini ``:batchEmbedContents`` and ``:embedContent`` (a wire module for ``tests.fakes.player``)."""

    VENDOR = "google"
    SSE_MEDIA_TYPE = gemini_wire.SSE_MEDIA_TYPE
    api_key = staticmethod(gemini_wire.api_key)
    response_headers = staticmethod(gemini_wire.response_headers)
    error = staticmethod(gemini_wire.error)
    auth_error = staticmethod(gemini_wire.auth_error)

    @staticmethod
    def parse(body: Mapping[str, Any], model: str, method: str) -> EmbedRequest:
        requests = body.get("requests") if method == "batchEmbedContents" else [body]
        requests = requests if isinstance(requests, list) else []
        texts = []
        dimensions = None
        problem = None
        for i, one in enumerate(requests):
            named = one.get("model")
            if named is not None and str(named).removeprefix("models/") != model:
                problem = f"* BatchEmbedContentsRequest.requests[{i}].model: the model must match the request's model"
            texts.append(content_text((one.get("content") or {}).get("parts")))
            dimensions = one.get("outputDimensionality", one.get("output_dimensionality", dimensions))
        if not requests or any(not t for t in texts):
            problem = "* BatchEmbedContentsRequest.requests: contents is not specified\n"
        elif len(requests) > GEMINI_MAX_REQUESTS:
            problem = (
                f"* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_REQUESTS} requests can be in one batch\n"
            )
        parsed = EmbedRequest(
            model=model,
            stream=False,
            last_user_text="",
            input_text=" ".join(texts),
            inputs=tuple(texts),
            dimensions=dimensions if isinstance(dimensions, int) else None,
            method=method,
            problem=problem,
        )
        _CURRENT.set(parsed)
        return parsed

    @staticmethod
    def completion(plan: Plan) -> dict[str, Any]:
        parsed = _CURRENT.get() or EmbedRequest(model=plan.model, stream=False, last_user_text="", input_text="")
        size = _size(parsed)
        embeddings = [{"values": vector(text, size)} for text in parsed.inputs]
        if parsed.method == "embedContent":
            return {"embedding": embeddings[0]}
        return {"embeddings": embeddings}

    @staticmethod
    def stream_events(plan: Plan, parsed: ParsedRequest) -> list[StreamEvent]:
        return []


OPENAI = OpenAIEmbeddingsWire()
GEMINI = GeminiEmbeddingsWire()
METHODS = ("batchEmbedContents", "embedContent")
