"""OpenAI's embeddings API at the edge: the request body decoded into the canonical ``EmbeddingRequest``
(every refusal a 400 naming the field, in OpenAI's error shape), and the ``{"object": "list", "data"}``
answer.

``input`` is a string, a list of strings, one token array (``list[int]``) or a list of token arrays; no
input may be empty and a request holds at most ``MAX_INPUTS`` of them (larger batches than a vendor takes
are split by the gateway). ``encoding_format`` is ``float`` (the default) or ``base64``; ``dimensions`` a
positive integer; ``task_type`` is Switchyard's extension for Gemini's ``taskType`` (``RETRIEVAL_QUERY``,
``RETRIEVAL_DOCUMENT``...). Unknown fields are not refused: the pass-through to OpenAI-protocol upstreams
forwards them, a translated target ignores them and the answer names them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from app.api.errors import invalid_request
from app.embeddings.gemini import TASK_TYPES
from app.embeddings.types import EmbeddingRequest, Embeddings, Inputs
from app.embeddings.vectors import encoded
from app.records import record
from app.schemas.openai_content import In, bad
from app.schemas.openai_request import _header_safe

MAX_INPUTS = 16_384  # inputs per request (8 OpenAI calls, 164 Gemini calls)
MAX_TOKEN_ID = 2**31 - 1


class EmbeddingsIn(In):
    """The embeddings request; ``input`` is checked by hand for clear messages (a union's errors are not)."""

    model: str = Field(min_length=1, max_length=256)
    input: Any = None
    dimensions: int | None = Field(default=None, ge=1, le=65_536)
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = Field(default=None, max_length=512)
    task_type: str | None = Field(default=None, max_length=64)


@record(slots=True)
class DecodedEmbeddings:
    model: str
    request: EmbeddingRequest


def _token_array(value: list[Any], param: str) -> tuple[int, ...]:
    if not value:
        raise bad(f"{param}: a token array must not be empty", param, "empty_array")
    for j, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, int):
            raise bad(f"{param}.{j}: a token must be an integer", f"{param}.{j}", "invalid_type")
        if not 0 <= token <= MAX_TOKEN_ID:
            raise bad(f"{param}.{j}: a token id must be between 0 and {MAX_TOKEN_ID}", f"{param}.{j}")
    return tuple(value)


def decode_input(value: Any) -> tuple[Inputs, bool]:
    """``(inputs, tokens)`` of the ``input`` field; a 400 naming the element at fault."""
    if value is None:
        raise bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(value, str):
        if not value:
            raise bad("input: the text to embed must not be empty", "input", "empty_string")
        return (value,), False
    if not isinstance(value, list):
        raise bad("input: expected a string, a list of strings or token arrays", "input", "invalid_type")
    if not value:
        raise bad("input: the list of inputs must not be empty", "input", "empty_array")
    if len(value) > MAX_INPUTS:
        raise bad(
            f"input: at most {MAX_INPUTS} inputs per request, got {len(value)}", "input", "array_above_max_length"
        )
    first = value[0]
    if isinstance(first, int) and not isinstance(first, bool):
        return (_token_array(value, "input"),), True
    if isinstance(first, list):
        arrays = []
        for i, item in enumerate(value):
            if not isinstance(item, list):
                raise bad(f"input.{i}: expected a token array like the other inputs", f"input.{i}", "invalid_type")
            arrays.append(_token_array(item, f"input.{i}"))
        return tuple(arrays), True
    if not isinstance(first, str):
        raise bad("input.0: expected a string, a token (integer) or a token array", "input.0", "invalid_type")
    texts = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise bad(f"input.{i}: expected a string like the other inputs", f"input.{i}", "invalid_type")
        if not item:
            raise bad(f"input.{i}: the text to embed must not be empty", f"input.{i}", "empty_string")
        texts.append(item)
    return tuple(texts), False


def _task_type(value: str | None) -> str | None:
    if value is None:
        return None
    task = value.strip().upper()
    if task not in TASK_TYPES:
        raise bad(f"task_type: expected one of {', '.join(sorted(TASK_TYPES))}", "task_type", "unsupported_value")
    return task


def decode_embeddings(data: dict[str, Any]) -> DecodedEmbeddings:
    """The canonical request of an embeddings body (the dict parsed from the client's bytes)."""
    try:
        body = EmbeddingsIn.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None
    inputs, tokens = decode_input(body.input)
    request = EmbeddingRequest(
        inputs=inputs,
        tokens=tokens,
        dimensions=body.dimensions,
        encoding_format=body.encoding_format or "float",
        user=body.user,
        task_type=_task_type(body.task_type),
        source=data,
        ignored=tuple(_header_safe(body.model_extra or {})),
    )
    return DecodedEmbeddings(body.model, request)


def embeddings_body(result: Embeddings, request: EmbeddingRequest, extra: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's embeddings answer for a reassembled (or translated) result, vectors in the client's
    encoding; ``switchyard`` holds the gateway's own fields (provider, cost, route), ignored by clients."""
    fmt = request.encoding_format
    data = [{"object": "embedding", "index": i, "embedding": encoded(v, fmt)} for i, v in enumerate(result.vectors)]
    tokens = result.usage.input_tokens
    return {
        "object": "list",
        "data": data,
        "model": result.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "switchyard": extra,
    }
