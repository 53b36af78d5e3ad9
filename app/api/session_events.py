"""A stream session's chunks as a front-end sends them, shared by every protocol front-end: a failure
after the stream started, or an end without the model's finish, becomes one final error event in the
front-end's own shape (``error_event``), never a clean end."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable

from app.domain import StreamChunk
from app.errors import GatewayError, UpstreamStreamError
from app.observability.context import annotate
from app.orchestration.streaming import StreamSession

log = logging.getLogger("switchyard.stream")

ErrorEvent = Callable[[GatewayError], bytes]


async def guarded(session: StreamSession, error_event: ErrorEvent) -> AsyncGenerator[StreamChunk | bytes, None]:
    """The session's chunks; a failure, or an end without the model's finish, is yielded as one final
    error event (bytes) instead."""
    chunks = session.chunks()
    try:
        async for piece in chunks:
            yield piece
    except GatewayError as exc:
        log.warning("stream from %s broke after content was sent: %s", session.model, exc.error_type)
        annotate(error_type=exc.error_type)
        yield error_event(exc)
        return
    except Exception as exc:
        log.error("stream from %s failed: %s", session.model, type(exc).__name__, exc_info=exc)
        annotate(error_type="internal_error")
        yield error_event(GatewayError("internal error while streaming"))
        return
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:  # at once, also when the client went away mid-stream
            await closer()
    if not session.finished:  # defensive: chunks() raises rather than ending early, but never claim completion
        yield error_event(
            UpstreamStreamError(
                "the stream ended before the model finished", provider=session.provider, model=session.model
            )
        )


def annotate_stream_end(session: StreamSession) -> None:
    """Record the finished stream's usage and cost on the request's observability record."""
    usage = session.usage
    if usage is not None:
        annotate(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=session.cost)
