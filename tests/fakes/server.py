"""A fake OpenAI / Anthropic / Gemini upstream speaking the real wire protocols on 127.0.0.1.

Run standalone with ``python -m tests.fakes.server --port 8199``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from tests.fakes import anthropic_wire, embeddings_wire, gemini_wire, openai_responses_wire, openai_wire
from tests.fakes.faults import TRANSPORT_KEY
from tests.fakes.player import ScriptedResponse
from tests.fakes.scripts import ParsedRequest, Reply, WireError

ANY_MODEL = "*"
"""``script(ANY_MODEL, ...)`` queues replies for models that have no queue of their own."""
_CUT_LOG = "ASGI callable returned without completing response."


@dataclass(frozen=True)
class RecordedRequest:
    """One generation request as the fake received it."""

    vendor: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    model: str
    stream: bool
    api_key: str | None
    raw: bytes = b""  # the body's bytes as received


class _QuietCuts(logging.Filter):
    """Drop uvicorn's error log for our deliberate stream cuts (only from our server threads)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread in self.threads and record.getMessage() == _CUT_LOG)


_QUIET = _QuietCuts()
logging.getLogger("uvicorn.error").addFilter(_QUIET)


class _TransportH11(H11Protocol):
    """uvicorn's h11 protocol, putting the connection's transport in each request's scope (for the socket
    faults of ``tests.fakes.faults``). The request's task has not run yet when ``data_received`` returns."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        cycle = getattr(self, "cycle", None)
        if cycle is not None:
            cycle.scope[TRANSPORT_KEY] = self.transport  # type: ignore[literal-required]


class FakeUpstream:
    """Scriptable fake of three LLM vendors' HTTP APIs, served by uvicorn in a background thread.

    Routes: OpenAI ``POST /v1/chat/completions``, ``POST /v1/embeddings`` and ``GET /v1/models``; Anthropic
    ``POST /v1/messages``; Gemini ``POST /v1beta/models/{model}:generateContent``,
    ``:streamGenerateContent``, ``:batchEmbedContents`` and ``:embedContent`` (also under ``/v1/models/``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self._requested_port = host, port
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Reply]] = {}
        self._epoch = 0
        self.default = Reply()
        self.valid_keys: set[str] | None = None
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.in_flight = 0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/embeddings", self._openai_embeddings, methods=["POST"]),
                Route("/v1/responses", self._openai_responses, methods=["POST"]),
                Route("/v1/models", self._openai_models, methods=["GET"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1beta/models/{target}", self._gemini, methods=["POST"]),
                Route("/v1/models/{target}", self._gemini, methods=["POST"]),
            ]
        )

    # -- scripting and state -------------------------------------------------

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies (FIFO) for calls to ``model``; ``ANY_MODEL`` matches any unscripted model."""
        with self._cond:
            self._queues.setdefault(model, deque()).extend(replies)

    def reset(self, idle_timeout: float = 1.0) -> None:
        """Forget scripts, recordings and counters; waits briefly for in-flight requests to end.

        Disconnects of requests that started before the reset are not counted afterwards.
        """
        with contextlib.suppress(TimeoutError):
            self.wait_idle(idle_timeout)
        with self._cond:
            self._epoch += 1
            self._queues.clear()
            self.requests.clear()
            self.disconnects = 0
            self.default = Reply()
            self.valid_keys = None

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Block (thread-safe, no asyncio) until ``predicate()`` holds; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake upstream: timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(remaining, 0.05))

    def wait_for_disconnects(self, n: int, timeout: float = 5.0) -> int:
        """Wait until at least ``n`` client disconnects were seen; returns the count."""
        self.wait_until(lambda: self.disconnects >= n, timeout, f"{n} disconnect(s) (have {self.disconnects})")
        return self.disconnects

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests were recorded; returns them."""
        self.wait_until(lambda: len(self.requests) >= n, timeout, f"{n} request(s) (have {len(self.requests)})")
        return list(self.requests)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is in flight."""
        self.wait_until(lambda: self.in_flight == 0, timeout, f"idle (in flight: {self.in_flight})")

    def _next_reply(self, model: str) -> Reply:
        with self._cond:
            for name in (model, ANY_MODEL):
                queue = self._queues.get(name)
                if queue:
                    return queue.popleft()
            return self.default

    def _disconnected(self, epoch: int) -> None:
        with self._cond:
            if epoch == self._epoch:
                self.disconnects += 1
            self._cond.notify_all()

    def _leave(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    # -- HTTP handlers ---------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        return await self._serve(request, openai_wire, openai_wire.parse)

    async def _openai_responses(self, request: Request) -> Response:
        return await self._serve(request, openai_responses_wire, openai_responses_wire.parse)

    async def _anthropic(self, request: Request) -> Response:
        return await self._serve(request, anthropic_wire, anthropic_wire.parse)

    async def _openai_embeddings(self, request: Request) -> Response:
        wire = embeddings_wire.OPENAI
        return await self._serve(request, wire, wire.parse)  # type: ignore[arg-type]

    async def _gemini(self, request: Request) -> Response:
        model, method = gemini_wire.split_target(request.path_params["target"])
        if method in embeddings_wire.METHODS:
            wire = embeddings_wire.GEMINI
            return await self._serve(request, wire, lambda body: wire.parse(body, model, method))  # type: ignore[arg-type]
        if method not in ("generateContent", "streamGenerateContent"):
            wire = gemini_wire.error(404, f"Method {method!r} is not supported by the fake.")
            return JSONResponse(wire.body, status_code=404)
        stream = method == "streamGenerateContent"
        return await self._serve(request, gemini_wire, lambda body: gemini_wire.parse(body, model, stream))

    async def _openai_models(self, request: Request) -> Response:
        with self._cond:
            names = sorted({m for m in self._queues if m != ANY_MODEL} | {"gpt-4o-mini", "gpt-4o"})
        return JSONResponse(openai_wire.models_list(names))

    async def _serve(
        self, request: Request, wire: ModuleType, parse: Callable[[Mapping[str, Any]], ParsedRequest]
    ) -> Response:
        with self._cond:
            self.in_flight += 1
            epoch = self._epoch
        try:
            raw = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            query = dict(request.query_params)
            error: WireError | None = None
            try:
                body: Any = json.loads(raw)
                parsed = parse(body)
            except (ValueError, AttributeError, TypeError) as exc:
                body = raw.decode(errors="replace")
                parsed = ParsedRequest(model="", stream=False, last_user_text="", input_text="")
                error = wire.error(400, f"Could not parse the JSON body of your request: {exc}")
            if error is None and getattr(parsed, "problem", None):  # what the real service refuses (embeddings)
                error = wire.error(400, parsed.problem)  # type: ignore[attr-defined]
            key = wire.api_key(headers, query)
            with self._cond:
                self.requests.append(
                    RecordedRequest(
                        vendor=wire.VENDOR,
                        path=request.url.path,
                        query=query,
                        headers=headers,
                        body=body,
                        model=parsed.model,
                        stream=parsed.stream,
                        api_key=key,
                        raw=raw,
                    )
                )
                valid_keys = self.valid_keys
                self._cond.notify_all()
            if error is None and valid_keys is not None and key not in valid_keys:
                error = wire.auth_error(key)
            reply = Reply() if error is not None else self._next_reply(parsed.model)
            return ScriptedResponse(
                request,
                wire,
                parsed,
                reply,
                error,
                on_disconnect=lambda: self._disconnected(epoch),
                on_done=self._leave,
            )
        except BaseException:
            self._leave()
            raise

    # -- lifecycle ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (Anthropic SDK and google-genai base_url)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI SDK's base_url: ``{base_url}/v1``."""
        return f"{self.base_url}/v1"

    def _make_server(self) -> tuple[uvicorn.Server, socket.socket]:
        sock = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )  # proto => asyncio sets TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            http=_TransportH11,
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        config.install_signal_handlers = False  # harmless if unused; uvicorn skips off-main-thread
        return uvicorn.Server(config), sock

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        _QUIET.threads.add(threading.get_ident())
        try:
            server.run(sockets=[sock])
        finally:
            _QUIET.threads.discard(threading.get_ident())

    def start(self, timeout: float = 10.0) -> FakeUpstream:
        """Serve on a free 127.0.0.1 port (or the one given) in a daemon thread."""
        if self._thread is not None:
            return self
        self._server, sock = self._make_server()
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock), name=f"fake-upstream-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake upstream failed to start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down and join its thread."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = self._thread = None

    def serve_forever(self) -> None:
        """Run in the current (main) thread until interrupted."""
        server, sock = self._make_server()
        print(f"fake upstream listening on {self.base_url}", flush=True)
        self._run(server, sock)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: ``python -m tests.fakes.server --port N``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    args = parser.parse_args(argv)
    FakeUpstream(args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
