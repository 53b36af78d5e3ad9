"""The gateway YAML file: the model catalogue and routing defaults, validated with pydantic.

An invalid file raises ``ConfigError`` naming the file, the key (dotted path) and the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.errors import ConfigError
from app.settings.orchestration import OrchestrationConfig, PipelineConfig, check_references
from app.settings.routing import (  # noqa: F401  (ComplexityTargets re-exported for older imports)
    ComplexityTargets,
    RoutingConfig,
    check_routing_references,
)

BUILT_IN_PROVIDERS = ("openai", "anthropic", "google", "openai_compatible", "llamacpp")
EMBEDDING_PROVIDERS = ("openai", "google", "openai_compatible")  # the providers with an embeddings API
_PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_provider(kind: str) -> str:
    """A built-in provider, or one added as a codec module ``app/providers/<kind>.py`` with a ``CODEC``."""
    if kind in BUILT_IN_PROVIDERS:
        return kind
    if _PROVIDER_NAME.match(kind) and importlib.util.find_spec(f"app.providers.{kind}") is not None:
        module = importlib.import_module(f"app.providers.{kind}")
        if getattr(module, "CODEC", None) is not None:
            return kind
    raise ValueError(f"unknown provider {kind!r}; built in: {', '.join(BUILT_IN_PROVIDERS)}")


ProviderKind = Annotated[str, AfterValidator(_check_provider)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """One catalogue entry, keyed by the name clients use."""

    provider: ProviderKind
    model: str | None = Field(default=None, description="Upstream model id; defaults to the catalogue name.")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="Environment variable holding the API key.")
    cost_per_1k_input: float | None = Field(default=None, ge=0)
    cost_per_1k_output: float | None = Field(default=None, ge=0)
    cost_per_1k_cached_input: float | None = Field(default=None, ge=0, description="Cache-read input tokens.")
    cost_per_1k_cache_write: float | None = Field(default=None, ge=0, description="Cache-write input tokens.")
    timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Time to the first byte of an answer (and idle gap, by default)."
    )
    idle_timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Longest gap between two stream chunks; default timeout_s."
    )
    fallbacks: tuple[str, ...] = ()
    tier: int = Field(default=2, ge=1, le=5, description="Quality tier, 1 = basic ... 5 = frontier.")
    router_name: str | None = Field(
        default=None, description="This model's name in the learned router's training data (default: its own)."
    )
    model_path: str | None = Field(default=None, description="GGUF file (llamacpp provider only).")
    context_window: int | None = Field(default=None, gt=0)
    max_queue: int = Field(default=4, ge=0, description="Waiting requests allowed (llamacpp provider only).")
    n_threads: int | None = Field(default=None, ge=1, description="Inference threads (llamacpp only).")
    system_prompt: str | None = Field(
        default=None, description="System message used when a request has none (llamacpp only)."
    )
    kind: Literal["chat", "embedding"] = Field(
        default="chat", description="embedding: served by POST /v1/embeddings only, never routed to for chat."
    )
    dimensions: int | None = Field(
        default=None, gt=0, le=65536, description="An embedding model's vector size (checked against fallbacks)."
    )

    @property
    def embeds(self) -> bool:
        return self.kind == "embedding"

    @model_validator(mode="after")
    def _provider_requirements(self) -> ModelConfig:
        if self.provider == "openai_compatible" and not self.api_base:
            raise ValueError("provider openai_compatible requires api_base")
        if self.embeds and self.provider not in EMBEDDING_PROVIDERS:
            raise ValueError(f"provider {self.provider} has no embeddings API ({', '.join(EMBEDDING_PROVIDERS)} have)")
        if self.dimensions is not None and not self.embeds:
            raise ValueError("dimensions is for embedding models (kind: embedding)")
        return self


class GatewayConfig(_Strict):
    """The whole YAML file."""

    models: dict[str, ModelConfig]
    routing: RoutingConfig = RoutingConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _references_exist(self) -> GatewayConfig:
        if not self.models:
            raise ValueError("at least one model must be configured")
        for name, model in self.models.items():
            for fallback in model.fallbacks:
                if fallback not in self.models:
                    raise ValueError(f"models.{name}.fallbacks names unknown model {fallback!r}")
                _check_fallback_kind(name, model, fallback, self.models[fallback])
        if self.routing.default_model and self.routing.default_model not in self.models:
            raise ValueError(f"routing.default_model names unknown model {self.routing.default_model!r}")
        return self

    @model_validator(mode="after")
    def _routing_references(self) -> GatewayConfig:
        check_routing_references(self.routing, self.models)
        return self

    @model_validator(mode="after")
    def _orchestration_references(self) -> GatewayConfig:
        embedding = {name for name, model in self.models.items() if model.embeds}
        check_references(self.orchestration, self.pipelines, self.models.keys() - embedding, embedding)
        return self


def _check_fallback_kind(name: str, model: ModelConfig, fallback: str, other: ModelConfig) -> None:
    """A chat model falls back to chat models, an embedding model to embedding models of its size."""
    if model.embeds != other.embeds:
        kinds = ("an embedding", "a chat") if model.embeds else ("a chat", "an embedding")
        raise ValueError(f"models.{name} is {kinds[0]} model; its fallback {fallback!r} is {kinds[1]} model")
    if model.dimensions and other.dimensions and model.dimensions != other.dimensions:
        raise ValueError(
            f"models.{name}.fallbacks: {fallback!r} makes {other.dimensions}-dimensional vectors, "
            f"{name} {model.dimensions}-dimensional ones"
        )


def _key_of(error: Any) -> str:
    return ".".join(str(part) for part in error.get("loc", ())) or "<root>"


def parse_config(data: object, source: str = "<memory>") -> GatewayConfig:
    """Validate already-parsed YAML data."""
    if not isinstance(data, dict):
        raise ConfigError(source, "<root>", "the file must be a mapping with a 'models:' key")
    try:
        return GatewayConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(source, _key_of(first), message) from None


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate the gateway YAML file at ``path``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "<file>", "file not found") from None
    except OSError as exc:
        raise ConfigError(source, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<yaml>"
        raise ConfigError(source, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, source)
