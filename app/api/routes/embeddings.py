"""``POST /v1/embeddings``: OpenAI's embeddings API in front of OpenAI, Gemini and OpenAI-compatible
embedding models (catalogue entries with ``kind: embedding``).

``model`` must be a catalogue embedding model (with its configured fallbacks): a routing alias is a 400,
since vectors of different models cannot be compared. When the whole request went to one OpenAI-protocol
upstream in one call, its answer comes back byte for byte; otherwise (Gemini, a batch split over several
calls, an upstream that ignored ``encoding_format``) the answer is built here, vectors in the client's
encoding, with Switchyard's ``switchyard`` fields beside. Every answer has ``x-switchyard-route`` and
``x-switchyard-provider``, and ``x-switchyard-ignored-params`` when the target ignored fields.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from app.api.deps import GatewayDep
from app.api.routing_input import MODEL_ALIASES, route_extra, switchyard_headers
from app.embeddings.codec import embedding_codec
from app.embeddings.service import EmbeddingService
from app.observability.context import annotate
from app.schemas.embeddings import decode_embeddings, embeddings_body
from app.schemas.openai_request import parse_json_object

router = APIRouter()


@router.post("/v1/embeddings")
async def embeddings(request: Request, gateway: GatewayDep) -> Response:
    decoded = decode_embeddings(parse_json_object(await request.body()))
    service = EmbeddingService(gateway)
    decision = service.plan(decoded.model, decoded.request, lambda name: name in MODEL_ALIASES)
    annotate(route=decision.strategy, stream=False)
    outcome = await service.embed(decision, decoded.request)
    result = outcome.result
    annotate(
        model=result.model,
        provider=result.provider,
        input_tokens=outcome.usage.input_tokens,
        output_tokens=0,
        cost=outcome.cost,
        estimated=outcome.usage.estimated or None,
        fallbacks=len(outcome.failures),
    )
    codec = embedding_codec(result.provider)
    ignored = codec.ignored(decoded.request) if codec is not None else ()
    headers = switchyard_headers(decision.strategy, result.model, result.provider, (), ignored)
    if result.body is not None:
        return Response(content=result.body, media_type="application/json", headers=headers)
    extra = {
        "provider": result.provider,
        "cost": result.cost,
        "latency_ms": round(result.latency_ms, 3),
        "calls": result.calls,
        "usage": {"estimated": result.usage.estimated},
        "route": route_extra(decision),
        "failures": [f.to_dict() for f in outcome.failures],
    }
    body = embeddings_body(result, decoded.request, extra)
    return Response(content=orjson.dumps(body), media_type="application/json", headers=headers)
