"""What a request needs from a target, checked against the target's ``Capabilities`` before any call.

Pure functions. A feature the target lacks either changes the meaning of the answer (images, structured
output, tools, logprobs, sampling controls: refused for an explicit model, skipped under routing) or does not
(``DROPPABLE_OPTIONS``: dropped and named in a response header). ``parallel_tool_calls: false`` is honoured
everywhere: natively where the vendor has the control, else by the provider keeping only the first tool
call of an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from app.domain import DROPPABLE_OPTIONS, ChatRequest, FilePart, ImagePart
from app.providers.base import Capabilities


def _has_part(request: ChatRequest, kind: type) -> bool:
    return any(isinstance(p, kind) for m in request.messages for p in m.parts)


def _format(request: ChatRequest, kind: str) -> bool:
    return request.response_format is not None and request.response_format.type == kind


# (parameter as the client names it, does the request use it, can the target honour it)
FEATURES: tuple[tuple[str, Callable[[ChatRequest], bool], Callable[[Capabilities], bool]], ...] = (
    ("image_url", lambda r: _has_part(r, ImagePart), lambda c: c.images),
    ("file", lambda r: _has_part(r, FilePart), lambda c: c.files),
    ("response_format.json_schema", lambda r: _format(r, "json_schema"), lambda c: c.json_schema),
    ("response_format.json_object", lambda r: _format(r, "json_object"), lambda c: c.json_object),
    ("tools", lambda r: bool(r.tools), lambda c: c.tools),
    ("tools.function.strict", lambda r: any(t.strict for t in r.tools), lambda c: c.strict_tools),
    ("reasoning_effort", lambda r: r.reasoning is not None, lambda c: c.reasoning),
    ("logprobs", lambda r: r.logprobs or bool(r.top_logprobs), lambda c: c.logprobs),
    ("logit_bias", lambda r: bool(r.logit_bias), lambda c: c.logit_bias),
    ("seed", lambda r: r.seed is not None, lambda c: c.seed),
    ("presence_penalty", lambda r: bool(r.presence_penalty), lambda c: c.penalties),
    ("frequency_penalty", lambda r: bool(r.frequency_penalty), lambda c: c.penalties),
    ("top_k", lambda r: r.top_k is not None, lambda c: c.top_k),
)


HONOURED: dict[str, Callable[[Capabilities], bool]] = {name: honoured for name, _, honoured in FEATURES}


def features_used(request: ChatRequest) -> tuple[str, ...]:
    """The ``FEATURES`` ``request`` uses. Planning asks once per candidate model, so the answer for the
    request seen last is kept (requests are immutable; it is matched by identity)."""
    global _last_used
    seen, used = _last_used
    if seen is request:
        return used
    used = tuple(name for name, uses, _ in FEATURES if uses(request))
    _last_used = (request, used)
    return used


_last_used: tuple[ChatRequest | None, tuple[str, ...]] = (None, ())


def unsupported(request: ChatRequest, caps: Capabilities, *, stream: bool = False) -> tuple[str, ...]:
    """The parameters of ``request`` that change the answer's meaning and that ``caps`` cannot honour
    (``n > 1`` without native support runs as parallel calls, which a single stream cannot carry)."""
    used = features_used(request)
    missing = tuple(name for name in used if not HONOURED[name](caps)) if used else ()
    if stream and request.n > 1 and not caps.native_n:
        missing += ("n",)
    return missing


def _droppable_set(request: ChatRequest) -> list[str]:
    found = []
    for name in DROPPABLE_OPTIONS:
        value = getattr(request, name)
        if value is not None and value != {}:
            found.append(name)
    return found


def to_drop(request: ChatRequest, caps: Capabilities, *, passthrough: bool = False) -> tuple[str, ...]:
    """The droppable options ``request`` sets that the target does not take (none for a pass-through: the
    client's body goes as it is and the upstream decides)."""
    if passthrough:
        return ()
    return tuple(name for name in _droppable_set(request) if name not in caps.droppable)


def without(request: ChatRequest, names: tuple[str, ...]) -> ChatRequest:
    """``request`` with the droppable options ``names`` cleared."""
    if not names:
        return request
    cleared: dict[str, object] = {name: ({} if name == "metadata" else None) for name in names}
    return replace(request, **cleared)  # type: ignore[arg-type]
