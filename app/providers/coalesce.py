"""Stream chunks decoded from one read of the upstream's body, merged where nothing is lost.

An upstream often sends several events in one TCP segment (a burst after a pause, a server that batches
tokens). Forwarding them as one chunk costs one pass through the gateway's stream path and one write to
the client instead of one per event, as a byte-copying proxy does per read. Only runs of plain text deltas
of one choice merge; a chunk with anything else (a tool-call fragment, reasoning, a signature, a refusal,
log probabilities, usage, a finish) stays as it is and ends the run (front-ends encode at most one
fragment per tool call in an event, and clients expect that). A pass-through chunk's
``raw`` bytes are the concatenation of its events' bytes, so the client receives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain import StreamChunk


def _mergeable(chunk: StreamChunk) -> bool:
    """Whether ``chunk`` is plain text (or nothing but its event's bytes)."""
    return not (
        chunk.tool_calls
        or chunk.reasoning
        or chunk.signature is not None
        or chunk.refusal
        or chunk.logprobs is not None
        or chunk.finish_reason is not None
        or chunk.usage is not None
        or chunk.other_finishes
        or chunk.raw_usage_only
        or chunk.redacted is not None
    )


def coalesce(chunks: Sequence[StreamChunk], *, raw: bool = False) -> list[StreamChunk]:
    """``chunks`` with each run of adjacent plain-text chunks of one choice replaced by one chunk.
    Chunks with ``raw`` bytes merge only when ``raw`` says the protocol's events may be concatenated (its
    front-end forwards them as bytes; one that reads each event's bytes, to tag or re-encode them, may not)."""
    out: list[StreamChunk] = []
    run: list[StreamChunk] = []
    run_key: tuple[int, bool] | None = None
    for chunk in chunks:
        merges = (raw or chunk.raw is None) and _mergeable(chunk)
        key = (chunk.choice, chunk.raw is not None) if merges else None
        if key is not None and key == run_key:
            run.append(chunk)
            continue
        _flush(run, out)
        run, run_key = [chunk], key
    _flush(run, out)
    return out


def _flush(run: list[StreamChunk], out: list[StreamChunk]) -> None:
    if len(run) == 1:
        out.append(run[0])
    elif run:
        first = run[0]
        out.append(
            StreamChunk(
                delta="".join(c.delta for c in run),
                choice=first.choice,
                raw=b"".join(c.raw for c in run if c.raw is not None) if first.raw is not None else None,
            )
        )
