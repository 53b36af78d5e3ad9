"""Which models may answer an embeddings request: the named catalogue embedding model, then its configured
fallbacks (embedding models too, the config checks it) that can serve it. A pure function of the request
and of what the gateway knows of each model (``Candidate``); no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from app.embeddings.codec import embedding_codec
from app.embeddings.types import EmbeddingRequest
from app.errors import InvalidRequestError, ModelNotFoundError, NoModelAvailableError, PermissionDeniedError
from app.records import record
from app.routing.base import RouteDecision, Skipped


@record(slots=True)
class Candidate:
    """A catalogue model as planning sees it: ``unavailable`` says why it cannot be called now (no key,
    open circuit), ``permitted`` whether the request's key may use it."""

    name: str
    provider: str
    embeds: bool
    fallbacks: tuple[str, ...] = ()
    unavailable: str | None = None
    permitted: bool = True


def cannot_embed(candidate: Candidate, request: EmbeddingRequest) -> tuple[str, str] | None:
    """Why ``candidate`` can never serve ``request`` and the field to blame (a chat model, a provider
    without embeddings, token arrays for a vendor that takes text only), or None."""
    if not candidate.embeds:
        return f"{candidate.name} is a chat model, not an embedding model (kind: embedding in the catalogue)", "model"
    codec = embedding_codec(candidate.provider)
    if codec is None:
        return f"provider {candidate.provider} has no embeddings API", "model"
    if request.tokens and not codec.takes_tokens:
        return f"provider {candidate.provider} takes text only, not token arrays", "input"
    return None


def plan_embeddings(
    model: str,
    request: EmbeddingRequest,
    catalogue: Mapping[str, Candidate],
    is_alias: Callable[[str], bool] = lambda _: False,
) -> RouteDecision:
    """The ordered plan for ``model``: 404 for an unknown name, 400 for a routing alias (vectors of
    different models are not comparable, so the client must pick one), a chat model or a request the model
    cannot serve, 403 for a model outside the key's rights, 503 when neither it nor a fallback is usable."""
    candidate = catalogue.get(model)
    if candidate is None:
        if is_alias(model):
            raise InvalidRequestError(
                f"model {model!r} is a routing alias; embeddings need a catalogue embedding model "
                f"(vectors of different models are not comparable): {', '.join(_embedders(catalogue)) or 'none'}",
                param="model",
                code="model_not_supported",
                model=model,
            )
        raise ModelNotFoundError(f"model {model!r} is not in the catalogue", model=model, param="model")
    if not candidate.permitted:
        raise PermissionDeniedError(f"model {model} is not allowed for this key", model=model, param="model")
    refusal = cannot_embed(candidate, request)
    if refusal is not None:
        why, param = refusal
        hint = "" if candidate.embeds else f"; embedding models: {', '.join(_embedders(catalogue)) or 'none'}"
        raise InvalidRequestError(
            f"model {model} cannot serve /v1/embeddings: {why}{hint}",
            param=param,
            code="model_not_supported",
            model=model,
        )
    fallbacks: list[str] = []
    skipped: list[Skipped] = []
    for name in candidate.fallbacks:
        other = catalogue.get(name)
        reason = "not configured" if other is None else _blocked(other, request)
        if reason is None:
            fallbacks.append(name)
        else:
            skipped.append(Skipped(name, reason))
    if candidate.unavailable is None:
        return RouteDecision("specific", (model, *fallbacks), f"model {model} requested", tuple(skipped))
    if not fallbacks:
        raise NoModelAvailableError(f"model {model!r} is unavailable: {candidate.unavailable}", model=model)
    reason = f"model {model} requested; skipped ({candidate.unavailable}), using fallback {fallbacks[0]}"
    return RouteDecision("specific", tuple(fallbacks), reason, (Skipped(model, candidate.unavailable), *skipped))


def _blocked(candidate: Candidate, request: EmbeddingRequest) -> str | None:
    if not candidate.permitted:
        return "not allowed for this key"
    refusal = cannot_embed(candidate, request)
    return refusal[0] if refusal is not None else candidate.unavailable


def _embedders(catalogue: Mapping[str, Candidate]) -> list[str]:
    return sorted(name for name, c in catalogue.items() if c.embeds)
