"""The ASGI application factory. ``uvicorn app.main:app`` serves the default; nothing is built at import
time beyond the (empty) FastAPI object: the catalogue and clients are built in the lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.body_limit import BodyLimitMiddleware
from app.api.direct_routes import DirectRoutes
from app.api.errors import install_error_handlers
from app.api.fastapi_options import LeanFastAPI, fastapi_options
from app.api.host_guard import HostGuardMiddleware, HostPolicy
from app.api.request_guard import InFlight, RequestGuardMiddleware
from app.api.routes import chat, complete, embeddings, health, messages, metrics, models, pipelines, responses
from app.api.routes import feedback as routing_feedback
from app.api.routes import keys as key_management
from app.api.routes import route as route_dry_run
from app.governance.middleware import GovernanceMiddleware
from app.lifespan import lifespan_for
from app.observability.setup import install_observability
from app.routing.rules import EMPTY_REGISTRY, ConditionRegistry
from app.settings.settings import Settings

# POST endpoints whose handler is ``(request, gateway) -> Response``: called directly (app.api.direct_routes)
DIRECT_ROUTES = {
    "/v1/chat/completions": chat.chat_completions,
    "/v1/messages": messages.create_message,
    "/v1/messages/count_tokens": messages.count_tokens,
    "/v1/responses": responses.create_response,
    "/v1/embeddings": embeddings.embeddings,
}


def create_app(settings: Settings | None = None, conditions: ConditionRegistry = EMPTY_REGISTRY) -> FastAPI:
    """Build the FastAPI app for ``settings`` (default: from the environment). ``conditions`` are routing
    rule conditions registered from Python, usable in the YAML under ``custom:``; serve such an app with
    your own module, e.g. ``app = create_app(conditions=EMPTY_REGISTRY.register("vip", builder))``."""
    settings = settings or Settings()
    app = LeanFastAPI(
        title="Switchyard",
        version="0.1.0",
        summary="An LLM gateway: one API over many providers, with routing and orchestration.",
        lifespan=lifespan_for(settings, conditions),
        otel_telemetry=settings.otel_telemetry,
        **fastapi_options(settings.otel_telemetry),
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (complete, chat, messages, embeddings, models, health, metrics):
        app.include_router(module.router)
    app.include_router(pipelines.router)
    app.include_router(route_dry_run.router)
    app.include_router(routing_feedback.router)
    app.include_router(key_management.router)
    app.include_router(responses.router)
    app.add_middleware(DirectRoutes, routes=DIRECT_ROUTES)  # innermost: the hot POSTs skip FastAPI's router
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(GovernanceMiddleware)  # keys, limits, budgets (when a master key is set)
    app.state.in_flight = InFlight()  # the lifespan lets the last answers finish at shutdown
    app.add_middleware(RequestGuardMiddleware, in_flight=app.state.in_flight)  # 500s, hang-ups, shutdown
    app.add_middleware(HostGuardMiddleware, policy=HostPolicy.parse(settings.allowed_hosts, settings.allowed_origins))
    install_observability(app, settings)  # outermost: sees every answer, the body limit's 413 included
    return app


app = create_app()
