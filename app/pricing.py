"""What one call costs, from its full usage: config prices first, else the ``genai-prices`` table.

``resolve_price`` runs once per catalogue model at startup: it looks the model up in the table and compiles
its prices into plain float rates per token (``Rates``), one set per prompt-size band. Pricing a call
(``Price.usage_cost``) is then a handful of multiplications, about a microsecond; genai-prices' own
``calc_price`` takes about 100 µs per call (Decimal arithmetic, the price table re-validated each time), too
slow for the hot path. The rules are genai-prices' own, and tests/unit/test_pricing.py checks the results
against its ``calc_price``:

- ``Usage.input_tokens`` counts every input token; the cached ones (``cached_input_tokens``) are charged at the
  cache-read price, the ``cache_write_tokens`` at the cache-write price, the rest at the input price. A model
  without a cache price charges those tokens as input.
- ``reasoning_tokens`` are part of ``output_tokens`` and are charged as output (at a reasoning price only where
  the table has one).
- Tiered prices (long prompts): once the input tokens pass a tier's start, that tier's prices apply to every
  token of the call (the "cliff" model the vendors use).
- Dated and time-of-day prices (a price change, off-peak hours) are chosen at call time; the last active one
  wins.
- ``Usage.estimated`` does not change the price; it only says the token counts are the gateway's estimate.

Config overrides replace the table's price of one token class: ``cost_per_1k_input``, ``cost_per_1k_output``,
``cost_per_1k_cached_input``, ``cost_per_1k_cache_write`` (read with ``getattr``, so a config without the two
cache fields works too). A cache class with no configured price keeps the table's price, else the input price.
A model whose input or output price is unknown costs ``None`` (answers carry ``cost: null``), never a
misleading 0. The in-process local model (``llamacpp``) costs 0 unless configured. An embedding model
(``kind: embedding``) has no output tokens: its output price is 0 unless configured.
"""

from __future__ import annotations

import logging
from dataclasses import field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from genai_prices.types import ModelPrice, StartDateConstraint, TieredPrices, TimeOfDateConstraint

from app.domain import Usage
from app.records import record

log = logging.getLogger(__name__)

PriceSource = Literal["config", "genai-prices", "local", "unknown"]
Constraint = StartDateConstraint | TimeOfDateConstraint

_GENAI_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google": "google"}
_PER_MTOK = 1_000_000.0


@record(slots=True)
class Rates:
    """USD per token of each token class, for prompts in one size band."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float


Band = tuple[int, Rates]  # (above, rates): the rates of a call whose input_tokens > above; bands ascend


@record(slots=True)
class Dated:
    """The bands of a table price that applies only while ``constraint`` is active (from a date, in some
    hours of the day). ``when`` describes it, for equality and hashing (the constraint itself is not
    hashable)."""

    bands: tuple[Band, ...]
    when: str
    constraint: Constraint = field(compare=False)


def _flat(
    input_per_1k: float | None, output_per_1k: float | None, cached: float | None, write: float | None
) -> tuple[Band, ...]:
    if input_per_1k is None or output_per_1k is None:
        return ()
    rate_in, rate_out = input_per_1k / 1000.0, output_per_1k / 1000.0
    read = rate_in if cached is None else cached / 1000.0
    written = rate_in if write is None else write / 1000.0
    return ((-1, Rates(rate_in, rate_out, read, written, rate_out)),)


@record(slots=True)
class Price:
    """A model's price. ``input_per_1k`` .. ``cache_write_per_1k`` are the base (shortest-prompt) prices per
    1k tokens that routing and ``/v1/models`` show; ``bands`` and ``dated`` are what calls are charged. Built
    from the four per-1k numbers alone (``Price(1.0, 2.0, "config")``), it is one flat band."""

    input_per_1k: float | None
    output_per_1k: float | None
    source: PriceSource
    cached_input_per_1k: float | None = None
    cache_write_per_1k: float | None = None
    bands: tuple[Band, ...] = ()
    dated: tuple[Dated, ...] = ()  # latest first; the first active one applies

    def __post_init__(self) -> None:
        if not self.bands:
            bands = _flat(self.input_per_1k, self.output_per_1k, self.cached_input_per_1k, self.cache_write_per_1k)
            object.__setattr__(self, "bands", bands)

    @property
    def known(self) -> bool:
        return self.input_per_1k is not None and self.output_per_1k is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """USD cost of plain input and output tokens, or None when the price is unknown."""
        return self.usage_cost(Usage(input_tokens, output_tokens))

    def usage_cost(self, usage: Usage, at: datetime | None = None) -> float | None:
        """USD cost of one call's full usage (``at``: when it ran, default now), or None when unknown."""
        bands = self.bands
        if self.dated:
            when = at or datetime.now(UTC)
            for dated in self.dated:
                if dated.constraint.active(when):
                    bands = dated.bands
                    break
        if not bands:
            return None
        total_input = usage.input_tokens
        rates = bands[0][1]
        for above, band_rates in bands:
            if total_input <= above:
                break
            rates = band_rates
        cached, written, reasoning = usage.cached_input_tokens, usage.cache_write_tokens, usage.reasoning_tokens
        # an inconsistent vendor usage (parts larger than the whole) never makes a negative charge
        fresh = max(total_input - cached - written, 0)
        answer = max(usage.output_tokens - reasoning, 0)
        return (
            fresh * rates.input
            + cached * rates.cache_read
            + written * rates.cache_write
            + answer * rates.output
            + reasoning * rates.reasoning
        )


UNKNOWN_PRICE = Price(None, None, "unknown")


# --- the genai-prices table, compiled ------------------------------------------------------------------


@record(slots=True)
class _Overrides:
    """Configured USD per token of each class (None: not configured)."""

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None


def _at(price: Decimal | TieredPrices | None, total_input: int) -> float | None:
    """A table price (per million tokens) as USD per token, for a call with ``total_input`` input tokens."""
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        chosen = price.base
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                chosen = tier.price
                break
        return float(chosen) / _PER_MTOK
    return float(price) / _PER_MTOK


def _compile(table: ModelPrice, over: _Overrides) -> tuple[Band, ...]:
    """The bands of one table price with the config overrides applied; () when input or output is unknown."""
    prices: dict[str, Any] = {
        key: getattr(table, key, None)
        for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok")
    }
    starts = sorted({t.start for p in prices.values() if isinstance(p, TieredPrices) for t in p.tiers})
    bands: list[Band] = []
    for above in (-1, *starts):
        n = above + 1  # the smallest prompt of this band
        rate_in = over.input if over.input is not None else _at(prices["input_mtok"], n)
        rate_out = over.output if over.output is not None else _at(prices["output_mtok"], n)
        if rate_in is None or rate_out is None:
            return ()
        read = over.cache_read if over.cache_read is not None else _at(prices["cache_read_mtok"], n)
        write = over.cache_write if over.cache_write is not None else _at(prices["cache_write_mtok"], n)
        reasoning = _at(prices["output_reasoning_mtok"], n) if over.output is None else None
        rates = Rates(
            rate_in,
            rate_out,
            rate_in if read is None else read,
            rate_in if write is None else write,
            rate_out if reasoning is None else reasoning,
        )
        if not bands or bands[-1][1] != rates:
            bands.append((above, rates))
    return tuple(bands)


def _lookup(upstream_model: str, provider: str, api_base: str | None) -> Any:
    """The table's model entry (``ModelInfo``), or None. An ``openai_compatible`` endpoint is looked up by
    its URL first (genai-prices knows the public vendors' URLs), then by the model name alone."""
    usage = PriceUsage(input_tokens=0, output_tokens=0)
    provider_id = _GENAI_PRICES_PROVIDER.get(provider)
    by_url = api_base if provider_id is None else None
    for url in (by_url, None) if by_url else (None,):
        try:
            if url is not None:
                return calc_price(usage, model_ref=upstream_model, provider_api_url=url).model
            return calc_price(usage, model_ref=upstream_model, provider_id=provider_id).model
        except LookupError:
            continue
        except Exception:  # the table is third-party data; it never stops startup
            log.warning("price lookup failed for %s/%s", provider, upstream_model, exc_info=True)
            return None
    return None


def _per_1k(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 1000.0, 12)


def resolve_price(name: str, config: Any) -> Price:
    """The price of catalogue model ``name`` (its ``ModelConfig``): config values override the table's."""
    configured = (
        config.cost_per_1k_input,
        config.cost_per_1k_output,
        getattr(config, "cost_per_1k_cached_input", None),
        getattr(config, "cost_per_1k_cache_write", None),
    )
    any_configured = any(value is not None for value in configured)
    if getattr(config, "kind", "chat") == "embedding" and configured[1] is None:
        configured = (configured[0], 0.0, *configured[2:])  # an embedding has no output tokens
    over = _Overrides(*(None if value is None else value / 1000.0 for value in configured))
    if config.provider == "llamacpp":
        local = _Overrides(over.input or 0.0, over.output or 0.0, over.cache_read, over.cache_write)
        return _price(_compile(ModelPrice(), local), (), "config" if any_configured else "local")
    # the table is read unless every class is configured (its cache prices apply where none is configured)
    model = None if None not in configured else _lookup(config.model or name, config.provider, config.api_base)
    if model is None:
        bands = _compile(ModelPrice(), over)
        return _price(bands, (), "config") if bands else _partial(over)
    dated: tuple[Dated, ...] = ()
    if isinstance(model.prices, ModelPrice):
        bands = _compile(model.prices, over)
    else:  # conditional prices: genai-prices uses the last active one (no constraint: always active)
        default, later = model.prices[0].prices, []
        for conditional in reversed(model.prices):
            if conditional.constraint is None:
                default = conditional.prices
                break
            constraint = conditional.constraint
            later.append(Dated(_compile(conditional.prices, over), repr(constraint), constraint))
        bands, dated = _compile(default, over), tuple(later)
        if not all(d.bands for d in dated):
            bands = ()  # one of them has no input or output price: do not guess
    if not bands:
        return _partial(over)
    return _price(bands, dated, "config" if any_configured else "genai-prices")


def _price(bands: tuple[Band, ...], dated: tuple[Dated, ...], source: PriceSource) -> Price:
    base = bands[0][1]
    return Price(
        _per_1k(base.input),
        _per_1k(base.output),
        source,
        _per_1k(base.cache_read),
        _per_1k(base.cache_write),
        bands,
        dated,
    )


def _partial(over: _Overrides) -> Price:
    """An unknown price (input or output missing), still showing the configured classes."""
    if over.input is None and over.output is None:
        return UNKNOWN_PRICE
    return Price(_per_1k(over.input), _per_1k(over.output), "config")
