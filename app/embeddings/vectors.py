"""Vectors as OpenAI sends them: JSON floats, or ``encoding_format: base64``: the base64 of the vector's
little-endian float32 bytes (what the openai SDKs decode with ``np.frombuffer(..., dtype="float32")``)."""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Sequence

from app.embeddings.types import EncodingFormat, Vector


def to_base64(values: Sequence[float]) -> str:
    """``values`` as float32 little endian, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def from_base64(text: str) -> list[float]:
    """The floats of a base64 vector; ``ValueError`` if it is not base64 of whole float32 values."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
    if len(raw) % 4:
        raise ValueError("not a whole number of float32 values")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def encoded(vector: Vector, encoding: EncodingFormat) -> Vector:
    """``vector`` in the client's ``encoding``: a base64 string is kept as the upstream sent it when the
    client asked for base64, floats likewise for float."""
    if encoding == "base64":
        return vector if isinstance(vector, str) else to_base64(vector)
    return from_base64(vector) if isinstance(vector, str) else vector


def check_vector(value: object) -> Vector:
    """An upstream's vector (a list of finite numbers, or a base64 string) as is; ``ValueError`` else."""
    if isinstance(value, str):
        if len(value) % 4 or not value:
            raise ValueError("a base64 vector of the wrong length")
        return value
    if not isinstance(value, list) or not value:
        raise ValueError("a vector is not a non-empty list")
    if not {type(number) for number in value} <= _NUMBERS:  # JSON parsed by orjson: never NaN or Infinity
        raise ValueError("a vector holds a value that is not a number")
    if not all(map(math.isfinite, value)):
        raise ValueError("a vector holds a value that is not a finite number")
    return value


_NUMBERS = frozenset({float, int})
