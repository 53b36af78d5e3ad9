"""``CodecProvider``: a vendor codec over the shared transport, the one ``Provider`` shape for HTTP vendors.

Per call it drops the droppable options the target does not take, inlines remote images for vendors that
cannot fetch them (through the SSRF guard of ``app.providers.media``), encodes, sends, and decodes. The error
boundary: a non-2xx answer is decoded by the codec into its typed error; a codec that trips over an answer it
did not expect (a bug, or a payload no test foresaw) still yields a typed ``UpstreamServerError``, never a
raw exception. A vendor that reports no usage gets an estimate, flagged ``estimated``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from app.domain import ChatRequest, Completion, ImagePart, StreamChunk, Usage
from app.errors import GatewayError, UpstreamError, UpstreamServerError
from app.providers.base import Capabilities, Codec, Decoded, HttpAnswer, ModelTarget, StreamDecoder
from app.providers.capabilities import to_drop, without
from app.providers.coalesce import coalesce
from app.providers.sse import SSEEvent
from app.providers.transport import Transport, Who
from app.tokens import estimate_prompt_tokens, estimate_tokens

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "text/json")


def estimate_usage(request: ChatRequest, output_text: str) -> Usage:
    """Usage for an answer the vendor sent none for: a documented heuristic (``app.tokens``), flagged."""
    return Usage(estimate_prompt_tokens(request), estimate_tokens(output_text), estimated=True)


def _codec_failure(exc: Exception, who: Who) -> UpstreamServerError:
    log.warning("the %s codec could not read an answer of %s: %s", who.provider, who.model, type(exc).__name__)
    return UpstreamServerError(
        f"{who.provider} sent an answer the gateway could not read", provider=who.provider, model=who.model
    )


def _has_remote_image(request: ChatRequest) -> bool:
    return any(
        isinstance(p, ImagePart) and p.url is not None and not p.url.startswith("data:")
        for m in request.messages
        for p in m.parts
    )


class CodecProvider:
    """``Provider`` for one endpoint: ``codec`` speaks the vendor, ``transport`` carries the bytes."""

    def __init__(self, codec: Codec, transport: Transport, *, media: object | None = None) -> None:
        self.codec = codec
        self.transport = transport
        self.kind = codec.kind
        self._media = media  # app.providers.media.MediaFetcher, for vendors that need images inlined

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return self.codec.capabilities(target)

    def passes_through(self, request: ChatRequest) -> bool:
        """Whether ``request`` goes upstream as the client sent it (same protocol)."""
        return request.source is not None and request.source.protocol == self.codec.protocol

    async def _prepare(self, request: ChatRequest, target: ModelTarget) -> tuple[ChatRequest, tuple[str, ...]]:
        caps = self.codec.capabilities(target)
        dropped = to_drop(request, caps, passthrough=self.passes_through(request))
        request = without(request, dropped)
        if not caps.image_urls and _has_remote_image(request):
            if self._media is None:
                from app.providers.media import MediaFetcher

                self._media = MediaFetcher()
            request = await self._media.inline_remote_images(request)  # type: ignore[attr-defined]
        return request, dropped

    def _one_call_only(self, request: ChatRequest, target: ModelTarget) -> bool:
        """``parallel_tool_calls: false`` for a vendor without that control: keep the first call only."""
        return request.parallel_tool_calls is False and not self.codec.capabilities(target).parallel_tool_control

    def _decode(self, answer: HttpAnswer, request: ChatRequest, target: ModelTarget, who: Who) -> Decoded:
        if not 200 <= answer.status < 300:
            raise self.codec.error(answer, target)
        try:
            decoded = self.codec.decode(answer, request, target)
        except GatewayError:
            raise
        except Exception as exc:
            raise _codec_failure(exc, who) from exc
        if len(decoded.tool_calls) > 1 and self._one_call_only(request, target):
            decoded = replace(decoded, tool_calls=decoded.tool_calls[:1])
        return decoded

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        started = time.perf_counter()
        who = Who(self.kind, target.name)
        request, dropped = await self._prepare(request, target)
        call = self.codec.encode(request, target, stream=False)
        answer = await self.transport.request(call, who, target.timeout_s, target.idle_timeout_s)
        decoded = self._decode(answer, request, target, who)
        usage = decoded.usage or estimate_usage(request, decoded.content)
        return Completion(
            content=decoded.content,
            model=target.name,
            provider=target.provider,
            usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            cost=target.price.usage_cost(usage),
            finish_reason=decoded.finish_reason,
            tool_calls=decoded.tool_calls,
            upstream_model=decoded.upstream_model or target.upstream_model,
            reasoning=decoded.reasoning,
            refusal=decoded.refusal,
            logprobs=decoded.logprobs,
            more_choices=decoded.more_choices,
            passthrough=decoded.passthrough,
            dropped_params=dropped,
        )

    async def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        who = Who(self.kind, target.name)
        request, _ = await self._prepare(request, target)
        call = self.codec.encode(request, target, stream=True)
        reply = await self.transport.open_stream(call, who, target.timeout_s, target.idle_timeout_s)
        async with reply:
            if not 200 <= reply.status < 300 or reply.headers.get("content-type", "").startswith(JSON_TYPES):
                # an error, or a server that ignored ``stream`` and answered one JSON body
                answer = await reply.answer()
                decoded = self._decode(answer, request, target, who)
                yield StreamChunk(delta=decoded.content, reasoning="".join(r.text for r in decoded.reasoning))
                usage = decoded.usage or estimate_usage(request, decoded.content)
                yield StreamChunk(finish_reason=decoded.finish_reason or "stop", usage=usage)
                return
            decoder = self.codec.stream_decoder(request, target)
            one_call = self._one_call_only(request, target)
            raw_merges = getattr(decoder, "raw_concatenates", False)
            output_chars = 0
            try:
                async for batch in reply.event_batches():
                    chunks, error = _decode_batch(decoder, batch, one_call)
                    for chunk in coalesce(chunks, raw=raw_merges) if len(chunks) > 1 else chunks:
                        output_chars += len(chunk.delta) + len(chunk.reasoning)
                        yield chunk
                    if error is not None:
                        raise error
                final = decoder.finish()
            except GatewayError:
                raise
            except Exception as exc:
                raise _codec_failure(exc, who) from exc
        if final.usage is None:  # the vendor reported none: an estimate, flagged
            final = replace(
                final, usage=Usage(estimate_prompt_tokens(request), (output_chars + 3) // 4, estimated=True)
            )
        yield final

    async def aclose(self) -> None:
        await self.transport.aclose()
        closer = getattr(self._media, "close", None)
        if closer is not None:
            await closer()


def _decode_batch(
    decoder: StreamDecoder, batch: list[SSEEvent], one_call: bool
) -> tuple[list[StreamChunk], Exception | None]:
    """The chunks of one read's events, and the error that stopped decoding them (the chunks before an
    error event still reach the client)."""
    chunks: list[StreamChunk] = []
    for event in batch:
        try:
            decoded = decoder.feed(event)
        except Exception as exc:
            return chunks, exc
        for chunk in decoded:
            if one_call and chunk.tool_calls:
                chunk = replace(chunk, tool_calls=tuple(d for d in chunk.tool_calls if d.index == 0))
                if not chunk.has_output and chunk.raw is None:
                    continue
            chunks.append(chunk)
    return chunks, None


__all__ = ["CodecProvider", "UpstreamError", "estimate_usage"]
