"""The embeddings codecs as tables: the request each builds, recorded answers (OpenAI's, a compatible
server's, Gemini's) and malformed ones, which are typed errors, never crashes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.domain import Usage
from app.embeddings.codec import ANSWER_BUDGET, embedding_codec, error, inputs_per_call
from app.embeddings.gemini import GEMINI
from app.embeddings.openai import OPENAI, OPENAI_COMPATIBLE
from app.embeddings.types import EmbeddingRequest
from app.errors import UpstreamRateLimitError, UpstreamServerError
from app.pricing import UNKNOWN_PRICE
from app.providers.base import HttpAnswer, ModelTarget
from app.settings.catalogue import ModelConfig


def target(provider: str = "openai", upstream: str = "text-embedding-3-small") -> ModelTarget:
    config = ModelConfig(provider=provider, api_base="http://x/v1", kind="embedding")  # type: ignore[arg-type]
    return ModelTarget("catalogue-name", provider, upstream, 5.0, UNKNOWN_PRICE, config)


def answer(body: Any, status: int = 200) -> HttpAnswer:
    return HttpAnswer(status, {"content-type": "application/json"}, orjson.dumps(body))


# A recorded OpenAI answer (shape of https://platform.openai.com/docs/api-reference/embeddings/object).
OPENAI_ANSWER = {
    "object": "list",
    "data": [
        {"object": "embedding", "index": 0, "embedding": [-0.006929283, -0.005336422, 0.000284631]},
        {"object": "embedding", "index": 1, "embedding": [0.012010936, -0.020478262, 0.007162358]},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}


def test_openai_body_is_the_clients_with_the_model_replaced() -> None:
    source = {"model": "my-alias", "input": "hi", "dimensions": 3, "unknown": [1], "task_type": "CLUSTERING"}
    request = EmbeddingRequest(inputs=("hi",), dimensions=3, task_type="CLUSTERING", source=source)
    body = OPENAI.body(request, target(), whole=True)
    assert body == {"model": "text-embedding-3-small", "input": "hi", "dimensions": 3, "unknown": [1]}
    call = OPENAI.encode(request, target(), whole=True)
    assert call.path == "/embeddings" and orjson.loads(call.body) == body


def test_openai_part_of_a_split_batch_replaces_input() -> None:
    source = {"model": "m", "input": ["a", "b", "c"], "encoding_format": "base64"}
    whole = EmbeddingRequest(inputs=("a", "b", "c"), encoding_format="base64", source=source)
    first, second = whole.batches(2)
    assert OPENAI.body(second, target(), whole=False) == {
        "model": "text-embedding-3-small",
        "input": ["c"],
        "encoding_format": "base64",
    }
    tokens = EmbeddingRequest(inputs=((1, 2), (3,)), tokens=True)
    assert OPENAI.body(tokens, target(), whole=False)["input"] == [[1, 2], [3]]
    assert first.inputs == ("a", "b")


def test_openai_decode_keeps_the_bytes_when_they_can_go_back() -> None:
    request = EmbeddingRequest(inputs=("a", "b"))
    decoded = OPENAI.decode(answer(OPENAI_ANSWER), request, target(), whole=True)
    assert decoded.vectors[1] == [0.012010936, -0.020478262, 0.007162358]
    assert decoded.usage == Usage(8, 0)
    assert decoded.body == orjson.dumps(OPENAI_ANSWER)
    assert OPENAI.decode(answer(OPENAI_ANSWER), request, target(), whole=False).body is None
    as_base64 = EmbeddingRequest(inputs=("a", "b"), encoding_format="base64")
    assert OPENAI.decode(answer(OPENAI_ANSWER), as_base64, target(), whole=True).body is None  # floats: re-encode


def test_openai_decode_orders_by_index_and_reads_compatible_servers() -> None:
    shuffled = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}  # no usage (Ollama)
    decoded = OPENAI_COMPATIBLE.decode(answer(shuffled), EmbeddingRequest(inputs=("a", "b")), target(), whole=True)
    assert decoded.vectors == ([1.0], [2.0])
    assert decoded.usage is None
    zero = {"data": [{"embedding": [1.0]}], "usage": {"prompt_tokens": 0, "total_tokens": 0}}  # llama.cpp server
    assert OPENAI_COMPATIBLE.decode(answer(zero), EmbeddingRequest(inputs=("a",)), target(), whole=True).usage is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        orjson.dumps([]),
        orjson.dumps({"data": None}),
        orjson.dumps({"data": [{"index": 0, "embedding": [1.0]}]}),  # one vector for two inputs
        orjson.dumps({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}),
        orjson.dumps({"data": [{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [1.0]}]}),
        orjson.dumps({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": ["x"]}]}),
        orjson.dumps({"data": [{"index": 0, "embedding": [1.0]}, "vector"]}),
    ],
)
def test_openai_malformed_answers_are_typed(body: bytes) -> None:
    with pytest.raises(UpstreamServerError, match="malformed"):
        OPENAI.decode(HttpAnswer(200, {}, body), EmbeddingRequest(inputs=("a", "b")), target(), whole=True)


def test_gemini_request() -> None:
    request = EmbeddingRequest(inputs=("a", "b"), dimensions=256, task_type="RETRIEVAL_QUERY", user="u")
    call = GEMINI.encode(request, target("google", "text-embedding-004"), whole=True)
    assert call.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    item = {"model": "models/text-embedding-004", "outputDimensionality": 256, "taskType": "RETRIEVAL_QUERY"}
    assert orjson.loads(call.body) == {
        "requests": [
            {**item, "content": {"parts": [{"text": "a"}]}},
            {**item, "content": {"parts": [{"text": "b"}]}},
        ]
    }
    assert GEMINI.ignored(request) == ("user",)
    prefixed = GEMINI.body(EmbeddingRequest(inputs=("a",)), target("google", "models/gemini-embedding-001"))
    assert prefixed == {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}}]}


def test_gemini_answer() -> None:
    body = {"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}
    decoded = GEMINI.decode(answer(body), EmbeddingRequest(inputs=("a", "b")), target("google"), whole=True)
    assert decoded.vectors == ([0.1, 0.2], [0.3, 0.4])
    assert decoded.usage is None and decoded.body is None


@pytest.mark.parametrize(
    "body",
    [
        {"embeddings": [{"values": [0.1]}]},
        {"embedding": {"values": [0.1]}},
        {"embeddings": [{"values": [0.1]}, {"values": "AAAA"}]},
        {"embeddings": [{"values": [0.1]}, {}]},
    ],
)
def test_gemini_malformed_answers_are_typed(body: dict[str, Any]) -> None:
    with pytest.raises(UpstreamServerError, match="malformed"):
        GEMINI.decode(answer(body), EmbeddingRequest(inputs=("a", "b")), target("google"), whole=True)


def test_errors_are_read_by_the_providers_chat_codec() -> None:
    body = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}
    exc = error(HttpAnswer(429, {"retry-after": "3"}, orjson.dumps(body)), target("google"))
    assert isinstance(exc, UpstreamRateLimitError) and exc.retry_after == 3
    assert embedding_codec("anthropic") is None and embedding_codec("llamacpp") is None
    assert embedding_codec("openai_compatible") is OPENAI_COMPATIBLE


def test_inputs_per_call_keeps_answers_inside_the_transports_bound() -> None:
    floats = EmbeddingRequest(inputs=("a",))
    assert inputs_per_call(OPENAI, floats, None) == 2048  # size unknown: the vendor's limit
    per_call = inputs_per_call(OPENAI, floats, 1536)  # 1536 JSON floats a vector: about 37 kB
    assert 600 < per_call < 700 and per_call * (1536 * 24 + 64) <= ANSWER_BUDGET
    assert inputs_per_call(OPENAI, EmbeddingRequest(inputs=("a",), encoding_format="base64"), 1536) == 2048
    assert inputs_per_call(OPENAI, EmbeddingRequest(inputs=("a",), dimensions=64), 1536) == 2048  # asked smaller
    assert inputs_per_call(GEMINI, floats, 3072) == 100
    assert inputs_per_call(OPENAI, floats, 65536) >= 1
