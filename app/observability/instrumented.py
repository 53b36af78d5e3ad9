"""A ``Provider`` wrapper that records every upstream call that succeeds: latency, tokens and cost, and
for streams the time to first token. The registry wraps each provider it builds, so this is the one place
where ``record_upstream_call`` and ``record_ttft`` are called.

Errors are split by who sees them: orchestration (``attempt.py``) records the errors of the calls it makes
(timeouts included, which reach a provider only as a cancellation); this wrapper records only a stream that
breaks after its first chunk, which orchestration no longer watches per attempt. A call cancelled by its
caller (the loser of a race, a client that went away) records nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from app.domain import ChatRequest, Completion, StreamChunk, Usage
from app.errors import GatewayError
from app.observability import metrics
from app.observability.context import current
from app.providers.base import Capabilities, ModelTarget, Provider
from app.tokens import estimate_prompt_tokens


def _error_type(exc: Exception) -> str:
    return exc.error_type if isinstance(exc, GatewayError) else "internal_error"


class InstrumentedProvider:
    """Delegates to ``inner`` and records metrics; other attributes pass through."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.kind = inner.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        started = time.perf_counter()
        completion = await self.inner.complete(request, target)
        self._record(target, started, completion.usage)
        return completion

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return self.inner.capabilities(target)

    async def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        started = time.perf_counter()
        first = True
        recorded = False
        output_chars = 0
        chunks = self.inner.stream(request, target)
        try:
            async for chunk in chunks:
                output_chars += len(chunk.delta) + len(chunk.reasoning)
                if first and chunk.has_output:
                    first = False
                    ttft = time.perf_counter() - started
                    metrics.record_ttft(target.name, target.provider, ttft)
                    ctx = current()
                    if ctx is not None and ctx.ttft_ms is None:
                        ctx.ttft_ms = ttft * 1000.0
                if chunk.usage is not None and not recorded:
                    # The last chunk carries the usage: record now, consumers may stop pulling after it.
                    recorded = True
                    self._record(target, started, chunk.usage)
                yield chunk
        except Exception as exc:
            if not first and not recorded:  # broke mid-stream; earlier errors are orchestration's to count
                metrics.record_upstream_error(target.name, target.provider, _error_type(exc))
            raise
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:  # close the upstream stream when our consumer stops early
                await aclose()
            if not recorded and not first:
                # broken or abandoned after output started: charged for what was used, estimated
                used = Usage(estimate_prompt_tokens(request), (output_chars + 3) // 4, estimated=True)
                self._record(target, started, used)

    @staticmethod
    def _record(target: ModelTarget, started: float, usage: Usage) -> None:
        metrics.record_upstream_call(
            target.name,
            target.provider,
            time.perf_counter() - started,
            usage.input_tokens,
            usage.output_tokens,
            target.price.usage_cost(usage),
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def instrument(provider: Provider) -> Provider:
    """``provider`` wrapped once (wrapping an already instrumented provider returns it unchanged)."""
    if isinstance(provider, InstrumentedProvider):
        return provider
    return InstrumentedProvider(provider)  # type: ignore[return-value]
