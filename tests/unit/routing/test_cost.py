"""The cost router: cheapest model of a sufficient tier within the budget, or a 422 naming the cheapest."""

from __future__ import annotations

import pytest

from app.errors import BudgetExceededError, NoModelAvailableError
from app.routing.router import route

from .helpers import catalogue, inp, model, routing

# Tiers 1..4 with increasing prices (USD per 1k input/output tokens).
MODELS = (
    model("tiny", 1, 0.0001, 0.0001),
    model("mini", 2, 0.00015, 0.0006),
    model("flash", 2, 0.0001, 0.0004),
    model("mid", 3, 0.001, 0.004),
    model("big", 4, 0.0025, 0.01),
    model("bigger", 4, 0.003, 0.015),
)
SIMPLE = "What is the capital of France?"
CODE = "Write a Python function to reverse a list"
COMPLEX = "Analyze the trade-offs of eventual consistency"


@pytest.mark.parametrize(
    ("prompt", "tier", "model_name", "plan"),
    [
        (SIMPLE, 2, "flash", ("flash", "mini", "mid", "big", "bigger")),
        (CODE, 3, "mid", ("mid", "big", "bigger")),
        (COMPLEX, 4, "big", ("big", "bigger")),
    ],
)
def test_cheapest_sufficient_tier_first(prompt: str, tier: int, model_name: str, plan: tuple[str, ...]) -> None:
    decision = route(inp(prompt, "cost"), catalogue(*MODELS), routing())
    assert decision.strategy == "cost"
    assert decision.models == plan
    assert decision.details["required_tier"] == tier
    assert f"needs tier >= {tier}" in decision.reason and f"cheapest: {model_name}" in decision.reason


def test_estimate_uses_max_tokens_or_the_configured_expectation() -> None:
    default = route(inp(SIMPLE, "cost"), catalogue(*MODELS), routing())
    assert default.details["output_tokens"] == 512
    configured = route(inp(SIMPLE, "cost"), catalogue(*MODELS), routing(cost={"expected_output_tokens": 50}))
    assert configured.details["output_tokens"] == 50
    given = route(inp(SIMPLE, "cost", max_tokens=2000), catalogue(*MODELS), routing())
    assert given.details["output_tokens"] == 2000
    costs = given.details["estimated_cost"]
    tokens_in = given.details["input_tokens"]
    assert costs["flash"] == pytest.approx((tokens_in * 0.0001 + 2000 * 0.0004) / 1000)


def test_budget_excludes_over_budget_models() -> None:
    # big: ~0.0051 for 512 output tokens; bigger: ~0.0077
    decision = route(inp(COMPLEX, "cost", max_cost=0.006), catalogue(*MODELS), routing())
    assert decision.models == ("big",)
    assert "<= max_cost $0.006" in decision.reason


@pytest.mark.parametrize("source", ["request", "config"])
def test_over_budget_is_422_naming_the_cheapest_possible_cost(source: str) -> None:
    if source == "request":
        args, config = {"max_cost": 0.001}, routing()
    else:
        args, config = {}, routing(cost={"default_max_cost": 0.001})
    with pytest.raises(BudgetExceededError) as info:
        route(inp(COMPLEX, "cost", **args), catalogue(*MODELS), config)
    error = info.value
    assert error.status_code == 422 and error.error_type == "budget_exceeded"
    assert error.details["cheapest_model"] == "big"
    assert error.details["cheapest_cost"] == pytest.approx(0.00513, abs=1e-4)
    assert error.details["required_tier"] == 4 and error.details["max_cost"] == 0.001
    assert "cheapest possible is big at about $0.005" in error.message


def test_request_budget_overrides_the_default() -> None:
    config = routing(cost={"default_max_cost": 0.001})
    assert route(inp(COMPLEX, "cost", max_cost=1.0), catalogue(*MODELS), config).model == "big"


def test_max_cost_alone_means_cost_routing_in_auto() -> None:
    assert route(inp(SIMPLE, max_cost=1.0), catalogue(*MODELS), routing()).strategy == "cost"
    assert route(inp(SIMPLE), catalogue(*MODELS), routing(auto="cost")).strategy == "cost"


def test_unavailable_cheapest_is_skipped_and_said() -> None:
    decision = route(inp(SIMPLE, "cost"), catalogue(*MODELS, unavailable={"flash": "circuit open"}), routing())
    assert decision.model == "mini"
    assert [(s.model, s.reason) for s in decision.skipped] == [("flash", "circuit open")]
    assert "skipped flash (circuit open)" in decision.reason
    assert "flash" not in decision.models


def test_budget_counts_only_available_models() -> None:
    view = catalogue(*MODELS, unavailable={"big": "no API key"})
    with pytest.raises(BudgetExceededError) as info:
        route(inp(COMPLEX, "cost", max_cost=0.006), view, routing())
    assert info.value.details["cheapest_model"] == "bigger"


def test_tiers_come_from_config() -> None:
    config = routing(cost={"tiers": {"simple": 4}})
    assert route(inp(SIMPLE, "cost"), catalogue(*MODELS), config).model == "big"


def test_unknown_prices_are_last_without_budget_and_excluded_with_one() -> None:
    models = (model("free-ish", 4, None, None), model("big", 4, 0.0025, 0.01))
    assert route(inp(COMPLEX, "cost"), catalogue(*models), routing()).models == ("big", "free-ish")
    assert route(inp(COMPLEX, "cost", max_cost=1.0), catalogue(*models), routing()).models == ("big",)


def test_no_usable_model_of_the_needed_tier_uses_the_best_usable_tier_and_says_so() -> None:
    view = catalogue(*MODELS, unavailable={"big": "no API key", "bigger": "circuit open"})
    decision = route(inp(COMPLEX, "cost"), view, routing())
    assert decision.models == ("mid",)
    assert (decision.details["required_tier"], decision.details["used_tier"]) == (4, 3)
    assert "needs tier >= 4 but none is available; best available tier 3: mid" in decision.reason
    assert [s.model for s in decision.skipped] == ["big", "bigger"]


def test_budget_still_holds_after_lowering_the_tier() -> None:
    view = catalogue(*MODELS, unavailable={"big": "no API key", "bigger": "no API key"})
    with pytest.raises(BudgetExceededError):
        route(inp(COMPLEX, "cost", max_cost=1e-9), view, routing())


def test_nothing_usable_at_all_is_503() -> None:
    view = catalogue(*MODELS, unavailable={m.name: "no API key" for m in MODELS})
    with pytest.raises(NoModelAvailableError):
        route(inp(COMPLEX, "cost"), view, routing())


def test_shipped_catalogue_defaults() -> None:
    """With the shipped models and prices: simple -> gemini-2.0-flash, code and complex -> gpt-4o."""
    assert route(inp(SIMPLE, "cost"), catalogue(), routing()).model == "gemini-2.0-flash"
    assert route(inp(CODE, "cost"), catalogue(), routing()).model == "gpt-4o"
    assert route(inp(COMPLEX, "cost"), catalogue(), routing()).model == "gpt-4o"
