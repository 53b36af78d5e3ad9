"""Cost per call from the full usage, with the real genai-prices table as the reference."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from app.domain import Usage
from app.pricing import Price, resolve_price
from app.settings.catalogue import ModelConfig


@dataclass(frozen=True)
class Config:
    """A ModelConfig with the two cache fields the catalogue is about to get."""

    provider: str
    model: str | None = None
    api_base: str | None = None
    cost_per_1k_input: float | None = None
    cost_per_1k_output: float | None = None
    cost_per_1k_cached_input: float | None = None
    cost_per_1k_cache_write: float | None = None


def table_cost(usage: Usage, model: str, provider: str, **where: object) -> float:
    """What genai-prices itself charges for ``usage`` (canonical input includes cached tokens, like theirs)."""
    reference = PriceUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    if "provider_api_url" in where:
        return float(calc_price(reference, model, **where).total_price)  # type: ignore[call-overload]
    return float(calc_price(reference, model, provider_id=provider, **where).total_price)  # type: ignore[call-overload]


USAGES = [
    Usage(0, 0),
    Usage(1000, 1000),
    Usage(12_345, 678, cached_input_tokens=10_000),
    Usage(5000, 2000, cached_input_tokens=1000, cache_write_tokens=3000, reasoning_tokens=1500),
    Usage(199_999, 10, cached_input_tokens=50_000),
    Usage(200_000, 10, cached_input_tokens=50_000),
    Usage(200_001, 10, cached_input_tokens=50_000),
    Usage(1_000_000, 40_000, cached_input_tokens=900_000, cache_write_tokens=50_000, reasoning_tokens=30_000),
]
MODELS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("o3-mini", "openai"),
    ("claude-3-5-sonnet-20241022", "anthropic"),
    ("claude-sonnet-4-20250514", "anthropic"),
    ("gemini-2.5-pro", "google"),
    ("gemini-1.5-pro", "google"),
    ("gemini-2.5-flash", "google"),
]


@pytest.mark.parametrize(("model", "provider"), MODELS)
@pytest.mark.parametrize("usage", USAGES, ids=str)
def test_cost_matches_genai_prices(model: str, provider: str, usage: Usage) -> None:
    price = resolve_price(model, ModelConfig(provider=provider))  # type: ignore[arg-type]
    assert price.source == "genai-prices"
    assert price.usage_cost(usage) == pytest.approx(table_cost(usage, model, provider), rel=1e-9, abs=1e-15)


def test_gpt_4o_cached_input_at_half_price() -> None:
    price = resolve_price("gpt-4o", ModelConfig(provider="openai"))
    assert (price.input_per_1k, price.cached_input_per_1k) == pytest.approx((0.0025, 0.00125))
    plain = price.usage_cost(Usage(input_tokens=1_000_000))
    cached = price.usage_cost(Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000))
    assert plain == pytest.approx(2.5)
    assert cached == pytest.approx(1.25)


def test_claude_cache_write_and_read_prices() -> None:
    price = resolve_price("claude-3-5-sonnet-20241022", ModelConfig(provider="anthropic"))
    base = price.usage_cost(Usage(input_tokens=1_000_000))
    written = price.usage_cost(Usage(input_tokens=1_000_000, cache_write_tokens=1_000_000))
    read = price.usage_cost(Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000))
    assert base == pytest.approx(3.0)
    assert written == pytest.approx(3.0 * 1.25)
    assert read == pytest.approx(3.0 * 0.1)
    # a call that reads, writes and sends fresh input: every class at its own price
    mixed = Usage(input_tokens=10_000, output_tokens=1000, cached_input_tokens=6000, cache_write_tokens=3000)
    assert price.usage_cost(mixed) == pytest.approx((1000 * 3 + 6000 * 0.3 + 3000 * 3.75 + 1000 * 15) / 1e6)


def test_gemini_long_prompt_tier_applies_to_every_token() -> None:
    price = resolve_price("gemini-2.5-pro", ModelConfig(provider="google"))
    assert len(price.bands) == 2 and price.bands[1][0] == 200_000
    short = price.usage_cost(Usage(input_tokens=200_000, output_tokens=1_000_000))
    long = price.usage_cost(Usage(input_tokens=200_001, output_tokens=1_000_000))
    assert short == pytest.approx(200_000 * 1.25 / 1e6 + 10.0)
    assert long == pytest.approx(200_001 * 2.5 / 1e6 + 15.0)
    # cached tokens count toward the tier threshold and get the long-prompt cache price
    cached = price.usage_cost(Usage(input_tokens=300_000, cached_input_tokens=300_000))
    assert cached == pytest.approx(300_000 * 0.25 / 1e6)
    # routing still sees the short-prompt price
    assert (price.input_per_1k, price.output_per_1k) == pytest.approx((0.00125, 0.01))


def test_reasoning_tokens_are_output_tokens() -> None:
    price = resolve_price("o3-mini", ModelConfig(provider="openai"))
    with_reasoning = price.usage_cost(Usage(input_tokens=100, output_tokens=1000, reasoning_tokens=900))
    assert with_reasoning == price.usage_cost(Usage(input_tokens=100, output_tokens=1000))
    assert with_reasoning == pytest.approx((100 * 1.1 + 1000 * 4.4) / 1e6)


def test_estimated_usage_costs_the_same() -> None:
    price = resolve_price("gpt-4o", ModelConfig(provider="openai"))
    assert price.usage_cost(Usage(500, 70, estimated=True)) == price.usage_cost(Usage(500, 70))


def test_time_of_day_prices_are_chosen_at_call_time() -> None:
    api = "https://api.deepseek.com/v1"
    price = resolve_price("deepseek-chat", Config("openai_compatible", api_base=api))
    assert price.dated, "deepseek-chat has off-peak prices in the table"
    usage = Usage(input_tokens=100_000, output_tokens=10_000, cached_input_tokens=40_000)
    for hour in (1, 12, 17, 23):
        at = datetime(2025, 6, 1, hour, 0, tzinfo=UTC)
        expected = table_cost(usage, "deepseek-chat", "", provider_api_url=api, genai_request_timestamp=at)
        assert price.usage_cost(usage, at=at) == pytest.approx(expected, rel=1e-9)
    assert price.usage_cost(usage, at=datetime(2025, 6, 1, 1, tzinfo=UTC)) != price.usage_cost(
        usage, at=datetime(2025, 6, 1, 20, tzinfo=UTC)
    )


# --- config overrides ------------------------------------------------------------------------------------


def test_configured_input_replaces_only_the_input_price() -> None:
    price = resolve_price("gpt-4o", Config("openai", cost_per_1k_input=0.001))
    assert price.source == "config"
    usage = Usage(input_tokens=10_000, output_tokens=1000, cached_input_tokens=4000)
    # fresh input at the configured price, cached input and output still at the table's
    assert price.usage_cost(usage) == pytest.approx(6000 * 0.001 / 1000 + 4000 * 1.25 / 1e6 + 1000 * 10 / 1e6)


def test_configured_cache_prices_replace_the_tables() -> None:
    config = Config(
        "anthropic",
        model="claude-3-5-sonnet-20241022",
        cost_per_1k_cached_input=0.0001,
        cost_per_1k_cache_write=0.002,
    )
    price = resolve_price("sonnet", config)
    usage = Usage(input_tokens=10_000, output_tokens=0, cached_input_tokens=5000, cache_write_tokens=2000)
    assert price.usage_cost(usage) == pytest.approx(3000 * 3 / 1e6 + 5000 * 0.0001 / 1000 + 2000 * 0.002 / 1000)
    assert (price.cached_input_per_1k, price.cache_write_per_1k) == pytest.approx((0.0001, 0.002))


def test_configured_prices_replace_every_tier() -> None:
    price = resolve_price("gemini-2.5-pro", Config("google", cost_per_1k_input=0.001, cost_per_1k_output=0.002))
    long = Usage(input_tokens=300_000, output_tokens=1000)
    assert price.usage_cost(long) == pytest.approx(300 * 0.001 + 1 * 0.002)


def test_cached_input_without_any_cached_price_is_input_price() -> None:
    # an endpoint the table does not know: everything from the config, cache tokens at the input price
    config = Config(
        "openai_compatible", api_base="http://127.0.0.1:9/v1", cost_per_1k_input=1.0, cost_per_1k_output=2.0
    )
    price = resolve_price("my-llama", config)
    usage = Usage(input_tokens=1000, output_tokens=1000, cached_input_tokens=500, cache_write_tokens=200)
    assert price.usage_cost(usage) == pytest.approx(1.0 + 2.0)
    # gemini-1.5-pro has no cache price in the table: cached tokens at its input price
    table = resolve_price("gemini-1.5-pro", ModelConfig(provider="google"))
    assert table.usage_cost(Usage(1000, 0, cached_input_tokens=1000)) == table.usage_cost(Usage(1000, 0))


def test_only_cached_price_configured_keeps_the_table_for_the_rest() -> None:
    price = resolve_price("gpt-4o", Config("openai", cost_per_1k_cached_input=0.0))
    usage = Usage(input_tokens=2000, output_tokens=100, cached_input_tokens=1000)
    assert price.usage_cost(usage) == pytest.approx(1000 * 2.5 / 1e6 + 100 * 10 / 1e6)


def test_a_plain_model_config_without_cache_fields_works() -> None:
    price = resolve_price("x", ModelConfig(provider="openai", cost_per_1k_input=1.0, cost_per_1k_output=3.0))
    assert price.cost(500, 1000) == pytest.approx(0.5 + 3.0)
    assert price.usage_cost(Usage(500, 1000, cached_input_tokens=500)) == pytest.approx(0.5 + 3.0)


# --- unknown and local -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        Config("openai_compatible", api_base="http://127.0.0.1:9/v1"),
        Config("openai_compatible", api_base="http://127.0.0.1:9/v1", cost_per_1k_input=1.0),
        Config("openai_compatible", api_base="http://127.0.0.1:9/v1", cost_per_1k_cached_input=1.0),
        Config("openai", model="no-such-model-anywhere"),
    ],
)
def test_unknown_price_is_none_never_zero(config: Config) -> None:
    price = resolve_price("mystery", config)
    assert not price.known
    assert price.usage_cost(Usage(1000, 1000)) is None
    assert price.cost(1000, 1000) is None


def test_local_model_is_free_unless_configured() -> None:
    free = resolve_price("local", Config("llamacpp"))
    assert (free.source, free.known) == ("local", True)
    assert free.usage_cost(Usage(10_000, 1000, cached_input_tokens=100)) == 0.0
    paid = resolve_price("local", Config("llamacpp", cost_per_1k_input=0.01))
    assert paid.source == "config"
    assert paid.usage_cost(Usage(1000, 1000)) == pytest.approx(0.01)


def test_price_built_from_per_1k_numbers_is_flat() -> None:
    price = Price(1.0, 2.0, "config")
    assert price.known
    assert price.cost(500, 1000) == pytest.approx(2.5)
    assert price.usage_cost(Usage(1000, 0, cached_input_tokens=1000)) == pytest.approx(1.0)
    assert Price(1.0, 2.0, "config", cached_input_per_1k=0.5).usage_cost(
        Usage(1000, 0, cached_input_tokens=1000)
    ) == pytest.approx(0.5)
    assert Price(None, None, "config").usage_cost(Usage(1, 1)) is None


def test_inconsistent_vendor_usage_never_charges_negative() -> None:
    price = resolve_price("gpt-4o", ModelConfig(provider="openai"))
    cost = price.usage_cost(Usage(input_tokens=10, output_tokens=5, cached_input_tokens=50, reasoning_tokens=9))
    assert cost is not None and cost > 0


def test_prices_are_hashable_and_comparable() -> None:
    config = Config("openai_compatible", api_base="https://api.deepseek.com/v1")
    first, second = resolve_price("deepseek-chat", config), resolve_price("deepseek-chat", config)
    assert first == second and hash(first) == hash(second)


def test_pricing_a_call_is_cheap() -> None:
    """Pricing runs on every answer and every stream end: well under 20 µs per call."""
    usages = [Usage(200_000 + i, 1000, cached_input_tokens=i, reasoning_tokens=10) for i in range(1000)]
    for model, provider in [("gemini-2.5-pro", "google"), ("claude-3-5-sonnet-20241022", "anthropic")]:
        price = resolve_price(model, ModelConfig(provider=provider))  # type: ignore[arg-type]
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for usage in usages:
                price.usage_cost(usage)
            best = min(best, (time.perf_counter() - start) / len(usages))
        assert best < 20e-6, f"{model}: {best * 1e6:.1f} µs per call"
