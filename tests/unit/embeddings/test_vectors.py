"""OpenAI's base64 vectors (little-endian float32) and the checks on an upstream's vectors."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from app.embeddings.vectors import check_vector, encoded, from_base64, to_base64


def test_base64_is_what_the_openai_sdk_decodes() -> None:
    values = [0.5, -1.25, 3.0e-5, 1234.5678]
    text = to_base64(values)
    decoded = np.frombuffer(base64.b64decode(text), dtype="float32")  # what openai-python does
    assert decoded.tolist() == np.array(values, dtype="<f4").tolist()
    assert base64.b64decode(text) == np.array(values, dtype="<f4").tobytes()
    assert from_base64(text) == decoded.tolist()


def test_encoded_keeps_the_upstream_form_when_it_matches() -> None:
    as_sent = to_base64([0.25, 0.5])
    assert encoded(as_sent, "base64") is as_sent
    assert encoded(as_sent, "float") == [0.25, 0.5]
    assert encoded([0.25, 0.5], "base64") == as_sent
    floats = [0.1, 0.2]
    assert encoded(floats, "float") is floats


@pytest.mark.parametrize("text", ["not base64!", "AAAA" + "A", base64.b64encode(b"abc").decode()])
def test_from_base64_refuses_what_is_not_float32(text: str) -> None:
    with pytest.raises(ValueError):
        from_base64(text)


@pytest.mark.parametrize("value", [[], None, 3, [1.0, "2"], [True, 1.0], [[1.0]], "abc", ""])
def test_check_vector_refuses_malformed(value: object) -> None:
    with pytest.raises(ValueError):
        check_vector(value)


def test_check_vector_accepts_numbers_and_base64() -> None:
    assert check_vector([1, 2.5]) == [1, 2.5]
    assert check_vector("AAAAAA==") == "AAAAAA=="
    with pytest.raises(ValueError):
        check_vector([float("inf")])
