"""Streamed execution: fall back freely until the first chunk, never after.

``open_stream`` tries the planned models in order (or races them, for a ``parallel`` plan) until one
yields its first chunk. A failure before that is invisible to the client: the next model is tried, as in
the non-streamed path. Once a ``StreamSession`` exists, content may have reached the client, so a later
failure is raised from ``StreamSession.chunks`` as an ``UpstreamError`` for the API layer to turn into an
explicit error event; the stream is never ended as if the answer were complete.

Each model's pre-first-chunk phase runs through the executor's ``ModelCaller.attempt`` (circuit breaker,
the model's ``timeout_s`` as the first-chunk deadline, retries with backoff), within the request's
overall deadline. Cancelling the task that iterates (the client went away) closes the provider's
generator, whose ``finally`` closes the upstream HTTP response at once. Metrics of the upstream calls
(time to first token included) are recorded by the instrumented providers; this module records fallbacks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from app.domain import ChatRequest, StreamChunk, ToolCall, Usage
from app.errors import DeadlineExceededError, Failure, UpstreamError, UpstreamStreamError
from app.observability.context import annotate
from app.orchestration.attempt import CallHold
from app.orchestration.breaker import counts_as_failure
from app.orchestration.deadline import Deadline, deadline_watch, request_timeout, within
from app.orchestration.executor import Executor, unique
from app.orchestration.parallel import all_failed, first_success
from app.orchestration.race import race
from app.orchestration.result import Ledger
from app.orchestration.toolcalls import ToolCallAssembler
from app.providers.capabilities import to_drop
from app.providers.registry import ModelEntry
from app.records import record
from app.routing.base import RouteDecision
from app.tokens import estimate_prompt_tokens
from app.watchdog import Watchdog

log = logging.getLogger(__name__)


@dataclass
class StreamSession:
    """A stream that has produced its first chunk on ``entry``'s model."""

    entry: ModelEntry
    first: StreamChunk
    rest: AsyncIterator[StreamChunk]
    failures: tuple[Failure, ...]
    started: float  # perf_counter when the request began streaming (before any attempt)
    first_chunk_at: float
    on_failure: Callable[[UpstreamError], None] | None = None
    preamble: tuple[StreamChunk, ...] = ()  # events without output that came before ``first`` (role chunk)
    tools: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    usage: Usage | None = None
    finish_reason: str | None = None
    output_chars: int = 0
    finished: bool = False
    deadline: Deadline | None = None  # the request's: it bounds the whole stream, not only its start
    passthrough: bool = False  # chunks carry the upstream's own event bytes (same-protocol pass-through)
    dropped_params: tuple[str, ...] = ()  # droppable options the model does not take (not sent)
    prompt_tokens: int = 0  # the prompt's estimated tokens (charged, with the output so far, if the stream breaks)
    hold: CallHold | None = None  # the call's budget reservation, settled to what it used when the stream closes
    _watch: Watchdog | None = field(default=None, repr=False)  # bounds each chunk by ``deadline`` (one timer)

    @property
    def model(self) -> str:
        return self.entry.target.name

    @property
    def provider(self) -> str:
        return self.entry.target.provider

    @property
    def ttft_ms(self) -> float:
        """Time to first chunk as the client sees it (fallback attempts included)."""
        return (self.first_chunk_at - self.started) * 1000.0

    @property
    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    @property
    def cost(self) -> float | None:
        return self.entry.target.price.usage_cost(self.usage or Usage())

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.tools.calls()

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        """Every chunk, tool-call fragments normalized; raises ``UpstreamError`` if the stream breaks."""
        try:
            for early in self.preamble:
                yield early
            chunk: StreamChunk | None = self.first
            iterator = self.rest.__aiter__()
            while chunk is not None:
                out = self._normalize(chunk)
                if chunk.finish_reason is not None:
                    self._finish(chunk)
                    if out.finish_reason != self.finish_reason or out.usage is not self.usage:
                        out = replace(out, finish_reason=self.finish_reason, usage=self.usage)
                    yield out
                    return
                yield out
                try:
                    chunk = await self._next(iterator)
                except StopAsyncIteration:
                    chunk = None
            raise UpstreamStreamError(
                "the upstream stream ended without a finish reason", provider=self.provider, model=self.model
            )
        except UpstreamError as exc:
            if self.on_failure is not None:
                self.on_failure(exc)
            if isinstance(exc, UpstreamStreamError):
                raise
            raise UpstreamStreamError(
                f"the {self.provider} stream broke after it started: {exc.message}",
                provider=self.provider,
                model=self.model,
                upstream_status=exc.upstream_status,
                cause=exc.error_type,
            ) from exc
        finally:
            if not self.finished:
                self._charge_partial()
            await self.aclose()

    def used(self) -> Usage:
        """What the stream used: the upstream's usage once it finished, else an estimate (flagged)."""
        if self.finished and self.usage is not None:
            return self.usage
        return Usage(self.prompt_tokens, (self.output_chars + 3) // 4, estimated=True)

    def _charge_partial(self) -> None:
        """A stream that broke, timed out or was abandoned is charged (on the request's record) for what it
        used, estimated; the instrumented provider counts the same estimate in the metrics."""
        used = self.used()
        cost = self.entry.target.price.usage_cost(used)
        annotate(input_tokens=used.input_tokens, output_tokens=used.output_tokens, cost=cost, estimated=True)

    async def _next(self, iterator: AsyncIterator[StreamChunk]) -> StreamChunk:
        """The next chunk, within what is left of the request's deadline (one timer for the whole stream)."""
        if self.deadline is None:
            return await anext(iterator)
        watch = self._watch
        if watch is None:
            watch = self._watch = deadline_watch(self.deadline)
        try:
            return await watch.wait(anext(iterator))
        except TimeoutError:
            raise UpstreamStreamError(
                f"the request's deadline of {self.deadline.timeout_s:g}s passed while streaming",
                provider=self.provider,
                model=self.model,
                cause="deadline_exceeded",
            ) from None

    def _normalize(self, chunk: StreamChunk) -> StreamChunk:
        self.output_chars += len(chunk.delta) + len(chunk.reasoning)
        if not chunk.tool_calls:
            return chunk
        deltas = tuple(d for d in (self.tools.add(raw) for raw in chunk.tool_calls) if d is not None)
        return replace(chunk, tool_calls=deltas)

    def _finish(self, chunk: StreamChunk) -> None:
        self.finished = True
        self.finish_reason = chunk.finish_reason
        if self.tools.started and self.finish_reason == "stop":
            self.finish_reason = "tool_calls"
        self.usage = chunk.usage or Usage()
        if self.usage.estimated:
            annotate(estimated=True)

    async def aclose(self) -> None:
        """Close the provider's stream (and with it the upstream response) and settle its reservation;
        idempotent."""
        if self._watch is not None:
            self._watch.close()
        closer = getattr(self.rest, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        hold, self.hold = self.hold, None
        if hold is not None:
            used = self.used()
            await hold.settle(self.entry.target.price.usage_cost(used), used)


@record
class _Started:
    entry: ModelEntry
    first: StreamChunk
    rest: AsyncIterator[StreamChunk]
    first_chunk_at: float
    preamble: tuple[StreamChunk, ...] = ()


async def _first_chunk(entry: ModelEntry, request: ChatRequest) -> _Started:
    """Start one model's stream and wait for its first chunk with output (or its end), keeping the events
    before it (a pass-through role chunk) to send first: until the model said something, another model can
    still take over (the caller bounds the wait)."""
    assert entry.provider is not None
    target = entry.target
    stream = entry.provider.stream(request, target)
    preamble: list[StreamChunk] = []
    try:
        first = await anext(stream)
        while not first.has_output and first.finish_reason is None:
            preamble.append(first)
            first = await anext(stream)
    except StopAsyncIteration:
        raise UpstreamStreamError(
            "the upstream stream ended before any content", provider=target.provider, model=target.name
        ) from None
    except BaseException:
        await _aclose(stream)
        raise
    return _Started(entry, first, stream, time.perf_counter(), tuple(preamble))


async def _aclose(stream: AsyncIterator[StreamChunk]) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()


Holds = dict[int, tuple[_Started, CallHold]]  # by id() of the started stream


async def _settle_prompt(started: _Started, hold: CallHold, request: ChatRequest) -> None:
    """Settle the reservation of a stream that was started and dropped: its prompt, estimated."""
    usage = Usage(estimate_prompt_tokens(request), 0, estimated=True)
    await hold.settle(started.entry.target.price.usage_cost(usage), usage)


class StreamOpener:
    """Opens streams with the executor's caller (breakers, retries), chain and deadlines."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def open(
        self, decision: RouteDecision, request: ChatRequest, timeout_s: float | None = None
    ) -> StreamSession:
        """The first model (in plan order, or the fastest for a ``parallel`` plan) whose stream starts."""
        executor = self.executor
        began = time.perf_counter()
        deadline = Deadline.after(request_timeout(timeout_s, executor.config), executor.clock)
        ledger = Ledger()
        holds: Holds = {}  # the reservations of the streams that started
        if decision.strategy == "parallel":
            work = self._race(unique(decision.models), request, deadline, ledger, holds)
        else:
            chain = executor.chain(decision.models, request, stream=True)
            work = self._chain(chain, request, deadline, ledger, holds)
        started: _Started | None = None
        watch = deadline_watch(deadline)  # the session bounds its chunks with the same timer
        try:
            started = await within(deadline, lambda: work, watch)
        except DeadlineExceededError as exc:
            exc.details["failures"] = [f.to_dict() for f in ledger.failures]
            raise
        finally:  # streams that started but do not stream (the deadline passed meanwhile): their prompt
            if started is None:
                watch.close()
            for key in [k for k in holds if started is None or k != id(started)]:
                await _settle_prompt(*holds.pop(key), request)
        hold = holds.pop(id(started))[1] if id(started) in holds else None
        breaker = executor.breakers.get(started.entry.target.name)
        provider = started.entry.provider
        assert provider is not None
        passthrough = bool(getattr(provider, "passes_through", lambda _r: False)(request))
        caps = provider.capabilities(started.entry.target)
        return StreamSession(
            deadline=deadline,
            passthrough=passthrough,
            dropped_params=to_drop(request, caps, passthrough=passthrough),
            entry=started.entry,
            first=started.first,
            preamble=started.preamble,
            rest=started.rest,
            failures=tuple(ledger.failures),
            started=began,
            first_chunk_at=started.first_chunk_at,
            on_failure=lambda exc: breaker.record_failure() if counts_as_failure(exc) else None,
            prompt_tokens=estimate_prompt_tokens(request),
            hold=hold,
            _watch=watch,
        )

    def _attempt(
        self, name: str, request: ChatRequest, deadline: Deadline, ledger: Ledger, holds: Holds
    ) -> Coroutine[Any, Any, _Started]:
        """The attempt's coroutine itself (no coroutine of ours around it: see ``Executor.execute``)."""

        def operation(entry: ModelEntry) -> Awaitable[_Started]:
            return _first_chunk(entry, request)

        def keep(started: _Started, hold: CallHold) -> None:
            holds[id(started)] = (started, hold)

        tokens = estimate_prompt_tokens(request)
        return self.executor.caller.attempt(
            name, operation, deadline, ledger, input_tokens=tokens, request=request, keep=keep
        )

    def _chain(
        self,
        models: tuple[str, ...],
        request: ChatRequest,
        deadline: Deadline,
        ledger: Ledger,
        holds: Holds,
    ) -> Coroutine[Any, Any, _Started]:
        def attempt(name: str) -> Awaitable[_Started]:
            return self._attempt(name, request, deadline, ledger, holds)

        return first_success(models, attempt, ledger.failures, "tried before streaming")

    async def _race(
        self,
        models: tuple[str, ...],
        request: ChatRequest,
        deadline: Deadline,
        ledger: Ledger,
        holds: Holds,
    ) -> _Started:
        """Every model at once; the first to yield a chunk streams, the others are cancelled (a stream that
        started just too late is closed, its reservation settled to its estimated prompt)."""

        async def discard(started: _Started) -> None:
            await _aclose(started.rest)
            if id(started) in holds:
                await _settle_prompt(*holds.pop(id(started)), request)

        def attempt(name: str) -> Coroutine[Any, Any, _Started]:
            return self._attempt(name, request, deadline, ledger, holds)

        report = await race(models, attempt, discard=discard)
        if report.result is None:
            raise all_failed(ledger.failures, report.errors, "in the race")
        return report.result
