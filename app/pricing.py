"""Prices per 1k tokens: from the config when given, else from the ``genai-prices`` table.

Prices are resolved once at startup. A model whose price is unknown has ``known = False`` and its answers
carry ``cost: null`` rather than a misleading 0. The in-process local model costs 0 unless configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from app.settings.catalogue import ModelConfig

log = logging.getLogger(__name__)

PriceSource = Literal["config", "genai-prices", "local", "unknown"]

_GENAI_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google": "google"}


@dataclass(frozen=True, slots=True)
class Price:
    input_per_1k: float | None
    output_per_1k: float | None
    source: PriceSource

    @property
    def known(self) -> bool:
        return self.input_per_1k is not None and self.output_per_1k is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """USD cost of one call, or None when the price is unknown."""
        if self.input_per_1k is None or self.output_per_1k is None:
            return None
        return (input_tokens * self.input_per_1k + output_tokens * self.output_per_1k) / 1000.0


UNKNOWN_PRICE = Price(None, None, "unknown")


def _from_table(upstream_model: str, provider: str) -> Price:
    provider_id = _GENAI_PRICES_PROVIDER.get(provider)
    try:
        result = calc_price(
            PriceUsage(input_tokens=1000, output_tokens=1000),
            model_ref=upstream_model,
            provider_id=provider_id,
        )
    except LookupError:
        return UNKNOWN_PRICE
    except Exception:  # the table is data from a third party; never let it stop startup
        log.warning("price lookup failed for %s/%s", provider, upstream_model, exc_info=True)
        return UNKNOWN_PRICE
    return Price(float(result.input_price), float(result.output_price), "genai-prices")


def resolve_price(name: str, config: ModelConfig) -> Price:
    """The price of catalogue model ``name``: config values override the table."""
    if config.cost_per_1k_input is not None and config.cost_per_1k_output is not None:
        return Price(config.cost_per_1k_input, config.cost_per_1k_output, "config")
    if config.provider == "llamacpp":
        return Price(config.cost_per_1k_input or 0.0, config.cost_per_1k_output or 0.0, "local")
    table = _from_table(config.model or name, config.provider)
    return Price(
        config.cost_per_1k_input if config.cost_per_1k_input is not None else table.input_per_1k,
        config.cost_per_1k_output if config.cost_per_1k_output is not None else table.output_per_1k,
        "config"
        if config.cost_per_1k_input is not None or config.cost_per_1k_output is not None
        else table.source,
    )
