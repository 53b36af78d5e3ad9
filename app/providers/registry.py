"""Builds one long-lived provider client per endpoint from the catalogue, and resolves model names.

A model is *available* when its provider could be built: its key variable is set (OpenAI-compatible
servers and the in-process model need none) and, for the local model, its runtime is installed. An
unavailable model stays in the catalogue with the reason, never a crash.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import cast

from app.domain import ChatRequest
from app.errors import ModelNotFoundError
from app.observability.instrumented import instrument
from app.observability.logging import register_secret
from app.pricing import resolve_price
from app.providers.base import Capabilities, Codec, ModelTarget, Provider
from app.providers.capabilities import unsupported
from app.providers.provider import CodecProvider
from app.providers.transport import Transport
from app.records import record
from app.settings.catalogue import GatewayConfig, ModelConfig

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "google": "GEMINI_API_KEY"}
KEY_REQUIRED = frozenset(DEFAULT_KEY_ENV)


@record(slots=True)
class ModelEntry:
    """A catalogue model with its provider, or the reason it cannot be used."""

    target: ModelTarget
    provider: Provider | None
    unavailable_reason: str | None = None

    @property
    def available(self) -> bool:
        return self.provider is not None


def key_env_of(config: ModelConfig) -> str | None:
    return config.api_key_env or DEFAULT_KEY_ENV.get(config.provider)


def missing_key_env(config: ModelConfig, env: Mapping[str, str]) -> str | None:
    """The key variable a model needs but ``env`` does not set, or None (set, or no key needed)."""
    key_env = key_env_of(config)
    if config.provider in KEY_REQUIRED and not (key_env and env.get(key_env)):
        return key_env
    return None


ProviderFactory = Callable[[ModelConfig, str | None], Provider]


def codec_for(kind: str) -> Codec:
    """The codec of provider ``kind``: the ``CODEC`` of module ``app.providers.<kind>``."""
    module = importlib.import_module(f"app.providers.{kind}")
    codec = getattr(module, "CODEC", None)
    if codec is None:
        raise ValueError(f"app.providers.{kind} has no CODEC")
    return cast(Codec, codec)


def _http_factory(config: ModelConfig, api_key: str | None) -> Provider:
    codec = codec_for(config.provider)
    base_url = config.api_base or codec.default_base_url
    if not base_url:
        raise ValueError(f"provider {config.provider} needs api_base")
    transport = Transport(base_url, codec.auth_headers(api_key))
    return CodecProvider(codec, transport)


def _local_factory(config: ModelConfig, api_key: str | None) -> Provider:
    from app.providers.llamacpp import LlamaCppProvider  # optional extra: '.[local]'

    return LlamaCppProvider.create(config)


def factory_for(kind: str) -> ProviderFactory:
    """How a provider of ``kind`` is built: the in-process model, or a codec over the shared transport."""
    return _local_factory if kind == "llamacpp" else _http_factory


def _endpoint_key(config: ModelConfig, api_key: str | None) -> tuple[str, ...]:
    if config.provider == "llamacpp":
        return ("llamacpp", config.model_path or "<default>")
    return (config.provider, config.api_base or "<default>", key_env_of(config) or "", str(bool(api_key)))


class ProviderRegistry:
    """Model name -> ``ModelEntry``; owns the clients and closes them."""

    def __init__(self, entries: dict[str, ModelEntry], providers: list[Provider]) -> None:
        self._entries = entries
        self.name_order = tuple(entries)  # the catalogue's models in configuration order
        self._providers = providers
        self._capabilities: dict[str, Capabilities] = {}  # a target's are fixed: asked once

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        env: Mapping[str, str] | None = None,
        factories: Mapping[str, ProviderFactory] | None = None,
    ) -> ProviderRegistry:
        """Create one provider per endpoint; models sharing an endpoint share its pooled client."""
        env = os.environ if env is None else env
        factories = factories or {}
        by_endpoint: dict[tuple[str, ...], Provider] = {}
        entries: dict[str, ModelEntry] = {}
        for name, model in config.models.items():
            target = ModelTarget(
                name=name,
                provider=model.provider,
                upstream_model=model.model or name,
                timeout_s=model.timeout_s,
                price=resolve_price(name, model),
                config=model,
            )
            key_env = key_env_of(model)
            api_key = env.get(key_env) if key_env else None
            register_secret(api_key)  # never logged, whatever an SDK error message says
            if (missing := missing_key_env(model, env)) is not None:
                entries[name] = ModelEntry(target, None, f"environment variable {missing} is not set")
                continue
            endpoint = _endpoint_key(model, api_key)
            provider = by_endpoint.get(endpoint)
            if provider is None:
                try:
                    provider = instrument(factories.get(model.provider, factory_for(model.provider))(model, api_key))
                except ImportError as exc:
                    reason = f"provider {model.provider} needs an optional dependency ({exc.name or exc})"
                    entries[name] = ModelEntry(target, None, reason)
                    continue
                except (OSError, ValueError) as exc:
                    entries[name] = ModelEntry(target, None, f"provider could not start: {exc}")
                    continue
                by_endpoint[endpoint] = provider
            entries[name] = ModelEntry(target, provider)
        return cls(entries, list(by_endpoint.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str) -> ModelEntry:
        """The entry for ``name``; ``ModelNotFoundError`` (404) if it is not in the catalogue."""
        try:
            return self._entries[name]
        except KeyError:
            raise ModelNotFoundError(f"model {name!r} is not in the catalogue", model=name) from None

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def available_names(self) -> list[str]:
        return [name for name, entry in self._entries.items() if entry.available]

    def cannot_serve(self, name: str, request: ChatRequest, *, stream: bool = False) -> tuple[str, ...]:
        """The parameters of ``request`` that model ``name`` cannot honour (nothing for an unusable model:
        its unavailability is reported instead). An embedding model (``kind: embedding``) serves no chat."""
        entry = self.entry(name)
        if entry.target.config.embeds:
            return ("chat",)
        if entry.provider is None:
            return ()
        caps = self._capabilities.get(name)
        if caps is None:
            caps = self._capabilities[name] = entry.provider.capabilities(entry.target)
        return unsupported(request, caps, stream=stream)

    def is_available(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry is not None and entry.available

    async def aclose(self) -> None:
        for provider in self._providers:
            try:
                await provider.aclose()
            except Exception:  # closing is best effort; one failure must not leak the others
                log.warning("closing provider %s failed", getattr(provider, "kind", "?"), exc_info=True)
