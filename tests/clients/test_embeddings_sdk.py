"""End to end: the official ``openai`` SDK's ``client.embeddings.create`` and LangChain's ``OpenAIEmbeddings``
against a real ``switchyard serve`` whose embedding models are OpenAI-, Gemini- and OpenAI-compatible-backed
(the fake upstream plays each vendor): floats and base64, ``dimensions``, list input, token arrays, and a
batch of 3000 split over several upstream calls and reassembled in order."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import openai
import pytest

from tests.clients.conftest import CLIENT_KEY
from tests.clients.gateway_process import GatewayProcess, serve
from tests.fakes.embeddings_wire import vector
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, fake_models, write_config

BACKENDS = {  # catalogue name -> (provider, upstream id, vendor calls per 3000 inputs)
    "text-embedding-3-small": ("openai", "text-embedding-3-small", 2),
    "gemini-embedding-001": ("google", "gemini-embedding-001", 30),
    "local-embed": ("openai_compatible", "nomic-embed-text", 2),
}
TOKEN_ARRAYS = ("text-embedding-3-small", "local-embed")  # Gemini takes text only


@pytest.fixture(scope="module")
def embed_gateway(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    folder = tmp_path_factory.mktemp("embeddings-gateway")
    base = fake_upstream.base_url
    models = fake_models(base)
    models["text-embedding-3-small"] = {"provider": "openai", "api_base": f"{base}/v1", "kind": "embedding"}
    models["gemini-embedding-001"] = {"provider": "google", "api_base": base, "kind": "embedding"}
    models["local-embed"] = {
        "provider": "openai_compatible",
        "model": "nomic-embed-text",
        "api_base": f"{base}/v1",
        "kind": "embedding",
        "cost_per_1k_input": 0,
    }
    config = write_config(folder, {"models": models, "orchestration": {"max_retries": 0}})
    with serve(config, folder / "serve.log", TEST_KEYS) as process:
        yield process
    log = process.log()
    for key in TEST_KEYS.values():
        assert key not in log, "a provider key reached the gateway's log"


@pytest.fixture
def client(embed_gateway: GatewayProcess, upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=embed_gateway.openai_base_url, api_key=CLIENT_KEY, max_retries=0) as c:
        yield c


def calls(upstream: FakeUpstream) -> list[object]:
    return [r for r in upstream.requests if "mbed" in r.path]


@pytest.mark.parametrize("model", list(BACKENDS))
@pytest.mark.parametrize("encoding", ["float", "base64", None])
def test_list_input_with_dimensions(
    client: openai.OpenAI, upstream: FakeUpstream, model: str, encoding: str | None
) -> None:
    texts = ["The quick brown fox", "jumps over", "the lazy dog"]
    extra = {} if encoding is None else {"encoding_format": encoding}
    raw = client.embeddings.with_raw_response.create(model=model, input=texts, dimensions=12, **extra)
    assert raw.headers["x-switchyard-provider"] == BACKENDS[model][0]
    assert raw.headers["x-switchyard-route"] == f"specific; model={model}"
    result = raw.parse()
    if encoding == "base64":
        vectors = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4").tolist() for d in result.data]  # type: ignore[arg-type]
    else:  # float, or the SDK's default (base64 on the wire, decoded by the SDK)
        vectors = [d.embedding for d in result.data]
    assert vectors == [vector(t, 12) for t in texts]
    assert result.usage.prompt_tokens == 9 and result.usage.total_tokens == 9  # words (estimated for Gemini)
    (call,) = calls(upstream)
    assert call.model == BACKENDS[model][1]  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", list(BACKENDS))
def test_single_string(client: openai.OpenAI, model: str) -> None:
    result = client.embeddings.create(model=model, input="hello gateway", dimensions=4, encoding_format="float")
    assert len(result.data) == 1 and result.data[0].embedding == vector("hello gateway", 4)


@pytest.mark.parametrize("model", TOKEN_ARRAYS)
def test_token_arrays(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    one = client.embeddings.create(model=model, input=[101, 202, 303], dimensions=4)
    assert one.data[0].embedding == vector([101, 202, 303], 4)
    many = client.embeddings.create(model=model, input=[[1, 2], [3, 4, 5]], dimensions=4)
    assert [d.embedding for d in many.data] == [vector([1, 2], 4), vector([3, 4, 5], 4)]
    assert many.usage.prompt_tokens == 5


def test_token_arrays_to_gemini_are_a_clear_400(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gemini-embedding-001", input=[1, 2, 3])
    assert "token arrays" in str(info.value) and info.value.body["param"] == "input"  # type: ignore[index]
    assert calls(upstream) == []


@pytest.mark.parametrize("model", list(BACKENDS))
def test_batch_of_3000_is_split_and_reassembled_in_order(
    client: openai.OpenAI, upstream: FakeUpstream, model: str
) -> None:
    texts = [f"doc {i} text" for i in range(3000)]  # 3 words and under 16 characters: 3 tokens either way
    result = client.embeddings.create(model=model, input=texts, dimensions=3)
    assert [d.index for d in result.data] == list(range(3000))
    assert [d.embedding for d in result.data] == [vector(t, 3) for t in texts]
    assert result.usage.prompt_tokens == 9000
    assert len(calls(upstream)) == BACKENDS[model][2]


def test_errors_through_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="chat model"):
        client.embeddings.create(model="gpt-4o-mini", input="x")
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedder", input="x")
    with pytest.raises(openai.BadRequestError, match="must not be empty"):
        client.embeddings.create(model="text-embedding-3-small", input=["ok", ""])


@pytest.mark.parametrize("model", list(BACKENDS))
def test_langchain_openai_embeddings(embed_gateway: GatewayProcess, upstream: FakeUpstream, model: str) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    embeddings = langchain_openai.OpenAIEmbeddings(
        model=model,
        base_url=embed_gateway.openai_base_url,
        api_key=CLIENT_KEY,
        dimensions=6,
        check_embedding_ctx_length=False,  # send the texts, not tiktoken token arrays (Gemini takes text only)
        max_retries=0,
    )
    documents = ["first document", "second document", "third"]
    assert embeddings.embed_documents(documents) == [vector(d, 6) for d in documents]
    assert embeddings.embed_query("a question") == vector("a question", 6)
