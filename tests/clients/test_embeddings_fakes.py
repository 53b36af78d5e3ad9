"""The fake upstream's embeddings endpoints checked with the vendors' own SDKs (``openai`` and
``google-genai``) talking to it directly: what the gateway's tests rely on is the real wire format."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.embeddings_wire import vector
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS

GEMINI_KEY = TEST_KEYS["GEMINI_API_KEY"]


def openai_client(upstream: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.openai_base_url, api_key=TEST_KEYS["OPENAI_API_KEY"], max_retries=0)


def gemini_client(upstream: FakeUpstream) -> genai.Client:
    return genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=upstream.base_url))


def test_openai_sdk_floats_base64_and_tokens(upstream: FakeUpstream) -> None:
    client = openai_client(upstream)
    default = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"], dimensions=5)
    assert upstream.requests[-1].body["encoding_format"] == "base64"  # the SDK asks for base64 and decodes it
    assert [d.embedding for d in default.data] == [vector("a b", 5), vector("c", 5)]
    assert default.usage.prompt_tokens == 3
    floats = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="a b", dimensions=5, encoding_format="float"
    )
    assert floats.http_response.json()["data"][0]["embedding"] == vector("a b", 5)
    assert len(client.embeddings.create(model="text-embedding-3-small", input="x").data[0].embedding) == 1536
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3]], dimensions=4)
    assert tokens.data[0].embedding == vector([1, 2, 3], 4) and tokens.usage.prompt_tokens == 3


@pytest.mark.parametrize(
    ("kwargs", "reply", "error"),
    [
        ({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8}, None, openai.BadRequestError),
        ({"model": "text-embedding-3-small", "input": [""]}, None, openai.BadRequestError),
        ({"model": "text-embedding-3-small", "input": ["x"] * 2049}, None, openai.BadRequestError),
        ({"model": "text-embedding-3-small", "input": "x"}, Reply(status=429), openai.RateLimitError),
        ({"model": "text-embedding-3-small", "input": "x"}, Reply(status=500), openai.InternalServerError),
    ],
)
def test_openai_sdk_errors(
    upstream: FakeUpstream, kwargs: dict[str, object], reply: Reply | None, error: type[Exception]
) -> None:
    if reply is not None:
        upstream.script("text-embedding-3-small", reply)
    with pytest.raises(error) as info:
        openai_client(upstream).embeddings.create(**kwargs)  # type: ignore[call-overload]
    assert isinstance(info.value, openai.APIStatusError) and info.value.body["message"]  # type: ignore[index]


def test_genai_sdk_batch_embed(upstream: FakeUpstream) -> None:
    config = types.EmbedContentConfig(output_dimensionality=6, task_type="RETRIEVAL_DOCUMENT")
    client = gemini_client(upstream)  # kept: a collected client closes its connection pool
    result = client.models.embed_content(model="text-embedding-004", contents=["first", "second text"], config=config)
    assert [e.values for e in result.embeddings or []] == [vector("first", 6), vector("second text", 6)]
    call = upstream.requests[-1]
    assert call.path.endswith("/models/text-embedding-004:batchEmbedContents") and call.api_key == GEMINI_KEY
    assert call.body["requests"][0]["taskType"] == "RETRIEVAL_DOCUMENT"
    full = client.models.embed_content(model="text-embedding-004", contents="x")
    assert len((full.embeddings or [])[0].values or []) == 768


def test_genai_sdk_errors(upstream: FakeUpstream) -> None:
    client = gemini_client(upstream)
    with pytest.raises(genai_errors.ClientError) as info:
        client.models.embed_content(model="text-embedding-004", contents=["x"] * 101)
    assert info.value.code == 400 and "at most 100" in str(info.value.message)
    upstream.script("text-embedding-004", Reply(status=503))
    with pytest.raises(genai_errors.ServerError) as server:
        client.models.embed_content(model="text-embedding-004", contents="x")
    assert server.value.status == "UNAVAILABLE"
    upstream.valid_keys = {"AIza-the-only-valid-key-000000"}
    with pytest.raises(genai_errors.ClientError) as bad_key:
        client.models.embed_content(model="text-embedding-004", contents="x")
    assert bad_key.value.code == 400 and "API key not valid" in str(bad_key.value.message)


def test_single_embed_content_and_base64_bytes(upstream: FakeUpstream) -> None:
    response = httpx.post(
        f"{upstream.base_url}/v1beta/models/gemini-embedding-001:embedContent",
        json={"content": {"parts": [{"text": "one"}]}, "outputDimensionality": 3},
        headers={"x-goog-api-key": GEMINI_KEY},
    )
    assert response.status_code == 200 and response.json() == {"embedding": {"values": vector("one", 3)}}
    body = {"model": "m", "input": "one", "dimensions": 3, "encoding_format": "base64"}
    answer = httpx.post(f"{upstream.openai_base_url}/embeddings", json=body).json()
    raw = base64.b64decode(answer["data"][0]["embedding"])
    assert raw == np.array(vector("one", 3), dtype="<f4").tobytes()
