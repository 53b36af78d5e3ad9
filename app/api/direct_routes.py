"""The hot POST endpoints dispatched straight to their handlers, without FastAPI's router.

Every completion endpoint's handler takes ``(request, gateway)``, reads the body itself and returns a
``Response``; FastAPI's route matching over every route, dependency solving and its exception and exit-stack
layers were ~20% of a chat request's profiled time for nothing the handler uses. ``DirectRoutes`` sits
innermost among the app's middlewares (every guard, limit and log still runs) and calls such a handler
directly; a handler's exception goes to the app's exception handlers as under FastAPI (by class, the same
lookup), and what none handles goes on to the outer middlewares unchanged. Other methods and paths reach
FastAPI as before, so the routes stay declared there (OpenAPI, 405 for ``GET``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.gateway import Gateway

Handler = Callable[[Request, Gateway], Awaitable[Response]]


class DirectRoutes:
    """``POST`` to a path in ``routes`` calls its handler; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Handler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(_route_path(scope)) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request, scope["app"].state.gateway)
        except Exception as exc:
            on_error = _exception_handler(scope["app"].exception_handlers, exc)
            if on_error is None:
                raise
            response = await on_error(request, exc)
            exc.__traceback__ = None  # a reused exception instance would pile up tracebacks
        # the response's own failures go on as they are: a plain response raises none the handlers take, and
        # a stream answers the errors of its opening itself (a failure after it started cuts it)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path routes match against: without the ``root_path`` prefix, as Starlette's router does."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _exception_handler(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    """The handler FastAPI's exception middleware would pick (by the exception's classes, nearest first);
    the catch-all ``Exception`` handler belongs to the outermost error middleware, so it is not picked."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
