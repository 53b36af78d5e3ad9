"""The one HTTP transport under every codec, and its error boundary.

One ``Transport`` per endpoint (base URL + key) holds a pooled ``aiohttp`` session, created lazily inside
the running loop and closed at shutdown. Timeouts mean *time to the first byte* (the response head) and
*idle time* between body chunks, never the length of a healthy stream; bodies and single stream events are
size-bounded.

Error boundary: whatever fails below ``request`` / ``open_stream`` (refused or reset connections, DNS,
TLS, non-HTTP bytes, truncated bodies, timeouts, oversized answers) leaves as a typed ``UpstreamError``;
nothing raw escapes. Reading the answer is the codec's job; HTTP status errors are decoded by the codec from
the ``HttpAnswer`` the transport returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from app.errors import UpstreamConnectionError, UpstreamError, UpstreamServerError, UpstreamTimeoutError
from app.providers.base import HttpAnswer, HttpCall, SSEEvent
from app.providers.sse import EventTooLarge, SSEParser
from app.records import record
from app.watchdog import Watchdog

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
# Connections per endpoint: 0 = no cap of the pool's own. A worker's concurrency is bounded where it is
# admitted (``SWITCHYARD_MAX_CONNECTIONS``, 503 beyond); a pool cap below it would make the calls past it wait
# for a connection in silence until their first-byte timeout (a 1000 cap held long streams at 1000 per model).
DEFAULT_POOL_SIZE = 0
READ_SIZE = 64 * 1024


@record(slots=True)
class Who:
    """Whose call it is, for error messages and metrics labels (catalogue names only)."""

    provider: str
    model: str


CALL_BOUND: ContextVar[tuple[asyncio.Task[Any] | None, float] | None] = ContextVar(
    "switchyard_call_bound", default=None
)
"""(task, loop time) by which an outer timer of that task ends the call (set by the orchestration's attempt):
a timer of ours that would fire no sooner is left out (two to three fewer timers per call)."""


def _covered(seconds: float) -> bool:
    """Whether the current task's call is already bounded to end within ``seconds`` from now."""
    bound = CALL_BOUND.get()
    if bound is None:
        return False
    task, until = bound
    return task is asyncio.current_task() and until <= asyncio.get_running_loop().time() + seconds


def _timeout(who: Who, what: str, seconds: float) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(f"{who.provider} {what} within {seconds:g}s", provider=who.provider, model=who.model)


def boundary_error(exc: BaseException, who: Who) -> UpstreamError:
    """The typed error for a failure below the transport (read from the exception's class, never its text)."""
    if isinstance(exc, UpstreamError):
        return exc
    common: dict[str, Any] = {"provider": who.provider, "model": who.model}
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectionError(f"could not connect to {who.provider}", **common)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return UpstreamConnectionError(f"the connection to {who.provider} was closed or reset", **common)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamConnectionError(f"the answer of {who.provider} was cut off", **common)
    if isinstance(exc, aiohttp.ClientResponseError):  # not HTTP: invalid status line or headers
        return UpstreamServerError(f"{who.provider} did not answer with valid HTTP", **common)
    if isinstance(exc, EventTooLarge):
        return UpstreamServerError(f"{who.provider} sent a stream event larger than the gateway accepts", **common)
    if isinstance(exc, aiohttp.ClientError | OSError | UnicodeError | ValueError):
        return UpstreamConnectionError(f"the call to {who.provider} failed ({type(exc).__name__})", **common)
    return UpstreamServerError(f"the call to {who.provider} failed ({type(exc).__name__})", **common)


class StreamReply:
    """An open upstream response: its status and headers, then either its whole body (errors) or its SSE
    events with an idle timeout between reads. Always ``close()`` it (``Transport.open_stream`` callers use
    ``async with``)."""

    def __init__(
        self, response: aiohttp.ClientResponse, who: Who, idle_s: float, max_body: int, max_event: int
    ) -> None:
        self._response = response
        self._who = who
        self._idle_s = idle_s
        self._max_body = max_body
        self._max_event = max_event
        self.status = response.status
        self.headers: Mapping[str, str] = _lower(response.headers)

    async def answer(self) -> HttpAnswer:
        """The whole body (for an error status, or a server that answered JSON to a stream request)."""
        body = await _read_body(self._response, self._who, self._idle_s, self._max_body)
        return HttpAnswer(self.status, self.headers, body)

    async def event_batches(self) -> AsyncIterator[list[SSEEvent]]:
        """The SSE events completed by each read of the body (never an empty list), as they arrive; ends when
        the upstream closes the body."""
        parser = SSEParser(self._max_event)
        content = self._response.content
        idle = Watchdog(idle_s=self._idle_s)  # one timer for all the reads, not one per read
        try:
            while True:
                try:
                    chunk = await idle.wait(content.readany())
                except TimeoutError:
                    raise _timeout(self._who, "stream sent nothing", self._idle_s) from None
                if not chunk:
                    break
                if batch := parser.feed(chunk):
                    yield batch
            if batch := parser.close():
                yield batch
        except (aiohttp.ClientError, OSError, EventTooLarge) as exc:
            raise boundary_error(exc, self._who) from exc
        finally:
            idle.close()

    async def close(self) -> None:
        """Release the connection: back to the pool after a complete body, else closed (so the upstream
        sees the disconnect at once and stops generating)."""
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            response.close()
            await asyncio.sleep(0)  # let the transport's deferred socket close run before moving on

    async def __aenter__(self) -> StreamReply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Transport:
    """One endpoint: base URL, static headers (auth), a pooled aiohttp session."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"content-type": "application/json", "accept": "application/json", **headers}
        self._pool_size = pool_size
        self._max_body = max_body_bytes
        self._max_event = max_event_bytes
        self._session: aiohttp.ClientSession | None = None
        self._proxy, self._proxy_auth = env_proxy(self.base_url)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                # HTTPS_PROXY / NO_PROXY are honoured (``env_proxy``, once per endpoint); ``trust_env`` would
                # look them up and read ~/.netrc again on every call, each in a thread-pool hop
                trust_env=False,
                skip_auto_headers=("User-Agent",),
                # no cookie jar: a vendor's Set-Cookie (a CDN's bot cookie) must not ride along on every
                # client's later calls, and filtering a jar is work on every request
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"user-agent": "switchyard"},
            )
        return self._session

    async def _send(self, call: HttpCall, who: Who, first_byte_s: float) -> aiohttp.ClientResponse:
        headers = {**self._headers, **call.headers}
        if call.stream:
            headers["accept"] = "text/event-stream"
        try:
            send = self.session.request(
                call.method,
                self.base_url + call.path,
                data=call.body,
                params=call.query or None,
                headers=headers,
                allow_redirects=False,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            )
            if _covered(first_byte_s):
                return await send
            async with asyncio.timeout(first_byte_s):
                return await send
        except TimeoutError:
            raise _timeout(who, "did not answer", first_byte_s) from None
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # a cancelled send's socket closes on the next loop iteration
            raise
        except Exception as exc:
            raise boundary_error(exc, who) from exc

    async def request(self, call: HttpCall, who: Who, timeout_s: float, idle_s: float | None = None) -> HttpAnswer:
        """Send ``call`` and read the whole answer (any status): ``timeout_s`` to its head, ``idle_s``
        (default ``timeout_s``) between reads of its body."""
        response = await self._send(call, who, timeout_s)
        try:
            body = await _read_body(response, who, idle_s or timeout_s, self._max_body)
        except BaseException:
            response.close()
            raise
        response.release()
        return HttpAnswer(response.status, _lower(response.headers), body)

    async def open_stream(self, call: HttpCall, who: Who, timeout_s: float, idle_s: float | None = None) -> StreamReply:
        """Send ``call`` and return the open response (status and headers read within ``timeout_s``; the
        body not yet: its reads wait at most ``idle_s``, default ``timeout_s``)."""
        response = await self._send(call, who, timeout_s)
        return StreamReply(response, who, idle_s or timeout_s, self._max_body, self._max_event)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def _read_body(response: aiohttp.ClientResponse, who: Who, idle_s: float, limit: int) -> bytes:
    """The whole body, each read bounded by ``idle_s``; over ``limit`` bytes is an error."""
    parts: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    content = response.content
    # the whole call ends sooner than a first idle gap could: no timer of our own, not even an unset one
    bound = contextlib.nullcontext() if _covered(idle_s) else asyncio.timeout(idle_s)
    try:
        async with bound as idle:  # one timer, moved on after each read
            while True:
                chunk = await content.read(READ_SIZE)
                if not chunk:
                    return b"".join(parts)
                size += len(chunk)
                if size > limit:
                    raise UpstreamServerError(
                        f"the answer of {who.provider} is larger than {limit} bytes",
                        provider=who.provider,
                        model=who.model,
                    )
                parts.append(chunk)
                if idle is not None:
                    idle.reschedule(loop.time() + idle_s)
    except TimeoutError:
        raise _timeout(who, "stopped sending its answer", idle_s) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise boundary_error(exc, who) from exc


def env_proxy(base_url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for ``base_url`` (``HTTP(S)_PROXY``, unless ``NO_PROXY`` exempts its
    host), as the vendors' SDKs honour it; (None, None) when there is none."""
    try:
        return get_env_proxy_for_url(URL(base_url))
    except (LookupError, ValueError):
        return None, None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
