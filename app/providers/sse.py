"""An incremental Server-Sent Events parser (the WHATWG event-stream format), pure and bounded.

Bytes go in as they arrive from the socket; complete ``SSEEvent`` values come out, each with the exact bytes
it was made of (for the same-protocol pass-through). Lines end with LF, CRLF or CR; an event ends at a
blank line; ``:`` lines are comments; ``id`` and ``retry`` are ignored (no reconnection upstream). An event
larger than ``max_event_bytes`` raises ``EventTooLarge`` so an upstream that never ends a line cannot grow
the buffer without bound.
"""

from __future__ import annotations

from app.providers.base import SSEEvent

DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


class EventTooLarge(ValueError):
    """One event (or one line) exceeded the parser's bound."""


class SSEParser:
    """Feed bytes, get events. Not thread-safe; one per stream."""

    __slots__ = ("_buffer", "_data", "_event", "_line_start", "_max", "_raw_start", "_scan")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_event_bytes
        self._scan = 0  # where to continue looking for a line end
        self._line_start = 0  # where the current (incomplete) line begins
        self._raw_start = 0  # where the current event's bytes begin
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk``."""
        self._buffer += chunk
        if self._line_start == 0 and not self._data and self._event is None and b"\r" not in self._buffer:
            return self._whole_events()
        return self._drain(final=False)

    def _whole_events(self) -> list[SSEEvent]:
        """The fast path of ``feed``, at an event boundary with LF line ends only (what servers send): the
        complete events are split off at once (``\n\n``) instead of line by line; the same events and bytes."""
        buffer = self._buffer
        end = buffer.rfind(b"\n\n")
        if end < 0:
            return self._drain(final=False)
        complete = bytes(buffer[: end + 2])
        del buffer[: end + 2]
        self._scan = 0
        events: list[SSEEvent] = []
        for block in complete.split(b"\n\n")[:-1]:  # the rest after the last separator is blank lines only
            block = block.lstrip(b"\n")  # blank lines before an event dispatch nothing
            if not block:
                continue
            if block[:6] == b"data: " and b"\n" not in block:  # one data line: most events of most servers
                events.append(SSEEvent(None, block[6:].decode("utf-8", errors="replace"), block + b"\n\n"))
                continue
            for line in block.split(b"\n"):
                self._field(line)
            if self._data or self._event is not None:
                events.append(SSEEvent(self._event, "\n".join(self._data), block + b"\n\n"))
            self._event, self._data = None, []
        if len(buffer) > self._max:
            raise EventTooLarge(f"an upstream event exceeded {self._max} bytes")
        return events

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        buffer = self._buffer
        events: list[SSEEvent] = []
        while True:
            end, width = _line_end(buffer, self._scan, final)
            if end < 0:
                self._scan = max(self._line_start, len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer))
                break
            line = bytes(buffer[self._line_start : end])
            self._scan = self._line_start = end + width
            if line:
                self._field(line)
                continue
            raw = bytes(buffer[self._raw_start : self._line_start])  # the event, blank line included
            self._raw_start = self._line_start
            if self._data or self._event is not None:
                events.append(SSEEvent(self._event, "\n".join(self._data), raw))
            self._event, self._data = None, []
        if self._raw_start:
            removed = self._raw_start
            del buffer[:removed]
            self._scan -= removed
            self._line_start -= removed
            self._raw_start = 0
        if len(buffer) > self._max:
            raise EventTooLarge(f"an upstream event exceeded {self._max} bytes")
        return events

    def close(self) -> list[SSEEvent]:
        """At end of stream: an event not followed by a blank line is still dispatched (some servers omit
        the final blank line after ``[DONE]``)."""
        events = self._drain(final=True)
        if self._buffer:  # an event without its blank line (or a last line without its end)
            complete_line = self._line_start == len(self._buffer)
            self._buffer += b"\n" if complete_line else b"\n\n"
            events += self._drain(final=True)
        self._buffer.clear()
        self._scan = self._line_start = self._raw_start = 0
        return events

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", errors="replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")


def _line_end(buffer: bytearray, start: int, final: bool = False) -> tuple[int, int]:
    """Index and width of the first line terminator at or after ``start``; (-1, 0) when the buffer holds
    no complete line (a trailing CR may still be the first half of CRLF, unless the stream ended)."""
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    if cr < 0:
        return (lf, 1) if lf >= 0 else (-1, 0)
    if cr + 1 == len(buffer):
        return (cr, 1) if final else (-1, 0)  # a CR at the end may be followed by LF
    if buffer[cr + 1] == 0x0A:
        return cr, 2
    return cr, 1
