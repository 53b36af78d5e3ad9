"""The per-request observability record: set by the middleware, filled in by routes and orchestration.

The middleware creates one ``RequestContext`` per HTTP request and puts it in a context variable; code that
knows the route strategy, the answering model, tokens or cost calls ``annotate(...)``. At the end of the
request the middleware turns the record into metrics and one JSON log line. Outside a request (unit tests,
background work) ``annotate`` is a no-op.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.domain import ChatRequest
    from app.orchestration.result import Outcome


class RequestContext:
    """What one request did. Fields stay ``None`` until someone knows them."""

    __slots__ = (
        "answer",
        "cost",
        "error_message",
        "error_type",
        "estimated",
        "fallbacks",
        "input_tokens",
        "key",
        "log_prompts",
        "model",
        "output_tokens",
        "prompt",
        "provider",
        "request_id",
        "route",
        "stream",
        "ttft_ms",
    )

    def __init__(self, request_id: str, log_prompts: bool = False) -> None:
        self.request_id = request_id
        self.log_prompts = log_prompts
        self.route: str | None = None
        self.key: str | None = None  # the name of the virtual key (or "master"); never the secret
        self.model: str | None = None
        self.provider: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cost: float | None = None
        self.estimated: bool | None = None  # the tokens and cost include the gateway's estimates
        self.fallbacks: int | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None  # the message of the error answer (logged with the request)
        self.stream: bool | None = None
        self.ttft_ms: float | None = None
        self.prompt: str | None = None
        self.answer: str | None = None


FIELDS = frozenset(RequestContext.__slots__) - {"request_id", "log_prompts"}

_current: ContextVar[RequestContext | None] = ContextVar("switchyard_request", default=None)


def current() -> RequestContext | None:
    """The record of the request being served, or None outside a request."""
    return _current.get()


def current_request_id() -> str | None:
    ctx = _current.get()
    return None if ctx is None else ctx.request_id


def annotate(**fields: Any) -> None:
    """Record facts about the current request, e.g. ``annotate(route="complexity", model="gpt-4o")``.

    Known fields: route (strategy), model, provider, input_tokens, output_tokens, cost, estimated (tokens
    and cost include estimates), fallbacks (count), error_type, error_message, stream, ttft_ms, prompt,
    answer. ``prompt``/``answer`` are only logged when
    ``SWITCHYARD_LOG_PROMPTS`` is on; check ``prompts_wanted()`` before building them. Unknown names raise
    ``TypeError`` so that typos fail in tests rather than vanish.
    """
    ctx = _current.get()
    if ctx is None:
        return
    for name, value in fields.items():
        if name not in FIELDS:
            raise TypeError(f"annotate() got an unknown field {name!r}")
        setattr(ctx, name, value)


def annotate_outcome(outcome: Outcome, request: ChatRequest | None = None) -> None:
    """Record an orchestration result: the answering model and provider, tokens and cost over every call
    made (what the request consumed), the number of failed attempts, and prompt/answer when wanted."""
    ctx = _current.get()
    if ctx is None:
        return
    completion = outcome.completion
    total = outcome.total_usage
    ctx.model = completion.model
    ctx.provider = completion.provider
    ctx.input_tokens = total.input_tokens
    ctx.output_tokens = total.output_tokens
    ctx.cost = outcome.total_cost
    ctx.estimated = total.estimated or None
    ctx.fallbacks = len(outcome.failures)
    if ctx.log_prompts:
        if request is not None:
            ctx.prompt = request.prompt_text
        ctx.answer = completion.content


def prompts_wanted() -> bool:
    """True when the current request's prompt and answer will be logged (``SWITCHYARD_LOG_PROMPTS``)."""
    ctx = _current.get()
    return ctx is not None and ctx.log_prompts


def bind(ctx: RequestContext) -> Any:
    """Make ``ctx`` current; returns the token for ``unbind``."""
    return _current.set(ctx)


def unbind(token: Any) -> None:
    _current.reset(token)
