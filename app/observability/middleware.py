"""Pure-ASGI request observability: request id, in-flight gauge, request metrics and one JSON log line.

For each HTTP request the middleware takes the id from ``x-request-id`` (when it is a sane token) or makes
one, returns it in the response header, makes a ``RequestContext`` current (routes fill it with
``annotate``), and at the end counts the request by route strategy, status class and outcome, observes its
latency and logs one line on the ``switchyard.access`` logger: with the error's message when the answer was
an error, and ``estimated`` when the tokens are estimates. A request whose client went away before its answer
ended is logged 499, with what it used so far. Infrastructure paths (``/health``, ``/ready``, ``/metrics``)
are neither counted nor logged above DEBUG, so probes and scrapes do not drown the signal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics
from app.observability.context import RequestContext, bind, unbind
from app.observability.logging import RecordMaker
from app.observability.multiproc import multiprocess_dir

log = logging.getLogger("switchyard.access")

HEADER = b"x-request-id"
VALID_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})
NO_ROUTE = "none"
STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
ERROR_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_ERROR_BODY = 64 * 1024
MAX_ERROR_MESSAGE = 300


def new_request_id() -> str:
    """32 hex digits: the time in milliseconds (12), then 80 random bits. Ids made later sort later, so the
    stores keyed by request id (routing decisions) append to their index instead of touching a random page
    of it per insert, which matters once a table holds weeks of them (not measurable on a fresh one)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def _error_from_body(body: bytes) -> tuple[str | None, str | None]:
    """The ``error.type`` (only values shaped like our error types) and ``error.message`` (shortened) of one of
    our JSON error bodies."""
    if not body or len(body) > MAX_ERROR_BODY:
        return None, None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    kind = kind if isinstance(kind, str) and ERROR_TYPE.fullmatch(kind) else None
    return kind, message[:MAX_ERROR_MESSAGE] if isinstance(message, str) else None


def _on_shutdown(send: Send) -> Send:
    """A lifespan ``send`` that, once the app has shut down, drops this worker's live gauges (in flight)
    from the shared multiprocess directory, so that a restarted worker does not leave a stale value."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            metrics.mark_process_dead()
        await send(message)

    return wrapped


CLIENT_CLOSED = 499
CLIENT_GONE = "client_disconnected"


def outcome_of(status: int, ctx: RequestContext) -> str:
    """``success``, or the error type (from ``annotate(error_type=...)`` or the error body)."""
    if ctx.error_type:
        return ctx.error_type
    if status < 400:
        return "success"
    return "internal_error" if status >= 500 else "http_error"


class ObservabilityMiddleware:
    """Wrap the app; cheap on the hot path (metric children are cached per label set)."""

    def __init__(self, app: ASGIApp, log_prompts: bool = False, quiet_paths: Iterable[str] = QUIET_PATHS) -> None:
        self.app = app
        self.log_prompts = log_prompts
        self.quiet_paths = frozenset(quiet_paths)
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self._records = RecordMaker(log, logging.INFO, "request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and multiprocess_dir():
                send = _on_shutdown(send)
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == HEADER:
                if VALID_ID.fullmatch(value):
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = new_request_id()
        header = (HEADER, request_id.encode("ascii"))
        ctx = RequestContext(request_id, self.log_prompts)
        status = 0
        error_body = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, error_body
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
                error_body = status >= 400
            elif error_body and kind == "http.response.body":
                error_body = False
                error_type, ctx.error_message = _error_from_body(message.get("body", b""))
                ctx.error_type = ctx.error_type or error_type
            await send(message)

        token = bind(ctx)
        quiet = scope["path"] in self.quiet_paths
        if not quiet:
            metrics.IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
            if status == 0 or ctx.error_type == CLIENT_GONE:  # no answer, or a stream abandoned: the client left
                status = CLIENT_CLOSED
                ctx.error_type = ctx.error_type or CLIENT_GONE
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            if status < 400:  # the error escaped before (or after) the answer started
                # A client that went away is logged as nginx does, 499 (client closed request), not as our 500.
                status = (CLIENT_CLOSED if cancelled else 500) if status == 0 else status
                ctx.error_type = ctx.error_type or ("cancelled" if cancelled else "internal_error")
            raise
        finally:
            seconds = time.perf_counter() - started
            unbind(token)
            if quiet:
                self._finish_quiet(scope, ctx, status, seconds)
            else:
                metrics.IN_FLIGHT.dec()
                self._finish(scope, ctx, status, seconds)

    def _finish_quiet(self, scope: Scope, ctx: RequestContext, status: int, seconds: float) -> None:
        """Probes and scrapes: not counted, logged at DEBUG only."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request", extra={"fields": self._fields(scope, ctx, status, seconds, outcome_of(status, ctx))})

    def _finish(self, scope: Scope, ctx: RequestContext, status: int, seconds: float) -> None:
        route = ctx.route or NO_ROUTE
        outcome = outcome_of(status, ctx)
        key = (route, STATUS_CLASSES[min(status // 100, 5)], outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.REQUESTS.labels(*key)
        counter.inc()
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = metrics.REQUEST_LATENCY.labels(route)
        histogram.observe(seconds)
        if log.isEnabledFor(logging.INFO):
            # what ``log.info`` does minus the caller lookup (a stack walk) and the per-record lookups
            log.handle(self._records.make(self._fields(scope, ctx, status, seconds, outcome)))

    def _fields(self, scope: Scope, ctx: RequestContext, status: int, seconds: float, outcome: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "request_id": ctx.request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "outcome": outcome,
            "latency_ms": round(seconds * 1000.0, 3),
            "route": ctx.route,
            "model": ctx.model,
            "provider": ctx.provider,
            "input_tokens": ctx.input_tokens,
            "output_tokens": ctx.output_tokens,
            "cost": ctx.cost,
        }
        if ctx.key is not None:
            fields["key"] = ctx.key
        if ctx.estimated:
            fields["estimated"] = True
        if ctx.error_message:
            fields["error"] = ctx.error_message
        if ctx.fallbacks:
            fields["fallbacks"] = ctx.fallbacks
        if ctx.stream is not None:
            fields["stream"] = ctx.stream
        if ctx.ttft_ms is not None:
            fields["ttft_ms"] = round(ctx.ttft_ms, 3)
        if self.log_prompts:
            fields["prompt"] = ctx.prompt
            fields["answer"] = ctx.answer
        return fields
