"""The governance service's own logic, without HTTP: worst-case reservations, holds nobody settled, the
brute-force limiter and the bounded metric labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.domain import ChatRequest, Message
from app.errors import KeyBudgetExceededError
from app.governance.context import Principal, bind_holds, bind_principal, unbind_holds, unbind_principal
from app.governance.keys import KeyCreate
from app.governance.limits import AuthFailures, KeyLabels
from app.governance.service import Governance, GovernanceConfig, Hold
from app.pricing import Price
from app.providers.base import ModelTarget
from app.settings.catalogue import ModelConfig
from app.state import SqliteStore

PRICE = Price(1.0, 2.0, "config")  # $0.001 / $0.002 per token


def target(name: str = "m", price: Price = PRICE) -> ModelTarget:
    return ModelTarget(name, "openai", name, 5.0, price, ModelConfig(provider="openai"))


@pytest.fixture
async def gov(tmp_path: Path) -> AsyncIterator[Governance]:
    service = Governance(SqliteStore(tmp_path / "s.db"), GovernanceConfig(master_key="m" * 20), ["m"])
    await service.start()
    yield service
    await service.aclose()


def request(max_tokens: int | None = None, n: int = 1) -> ChatRequest:
    return ChatRequest(messages=(Message("user", "hello there"),), max_tokens=max_tokens, n=n)


async def test_worst_case_is_input_plus_the_output_limit_n_times(gov: Governance) -> None:
    assert gov.worst_case(target(), request(max_tokens=10), 2) == pytest.approx(2 * 0.001 + 10 * 0.002)
    assert gov.worst_case(target(), request(max_tokens=10, n=3), 2) == pytest.approx(3 * (0.002 + 0.02))
    assert gov.worst_case(target(), request(), 2) == pytest.approx(0.002 + 4096 * 0.002)  # the default limit
    assert gov.worst_case(target("u", Price(None, None, "unknown")), request(max_tokens=10), 2) == 0


async def test_holds_nobody_settled_are_settled_when_the_request_ends(gov: Governance) -> None:
    record, _ = await gov.create_key(KeyCreate(name="k", budget_usd=1.0))
    token = bind_principal(Principal(record, gov.clock()))
    holds: list[Hold] = []
    holds_token = bind_holds(holds)
    try:
        hold = await gov.reserve(target(), request(max_tokens=100), 2)
        assert hold is not None and holds == [hold]
        _, usage = await gov.get_key(record.id)
        assert usage.reserved_usd == pytest.approx(0.002 + 0.2)
        await gov.settle_leftovers(holds)  # what the middleware does at the end of the request
        await gov.settle_leftovers(holds)  # idempotent
    finally:
        unbind_holds(holds_token)
        unbind_principal(token)
    _, usage = await gov.get_key(record.id)
    assert usage.reserved_usd == 0 and usage.spent_usd == pytest.approx(0.002)  # the prompt, estimated


async def test_a_spent_budget_refuses_the_reservation(gov: Governance) -> None:
    record, _ = await gov.create_key(KeyCreate(name="k", budget_usd=0.01))
    token = bind_principal(Principal(record, gov.clock()))
    try:
        hold = await gov.reserve(target(), request(max_tokens=100), 2)
        assert hold is not None
        await hold.settle(0.05)
        with pytest.raises(KeyBudgetExceededError) as refused:
            await gov.reserve(target(), request(max_tokens=100), 2)
        assert refused.value.details["spent_usd"] == pytest.approx(0.05)
    finally:
        unbind_principal(token)
    assert await gov.reserve(target(), request(), 2) is None  # outside a virtual key's request: nothing held


def test_auth_failures_lock_an_address_out() -> None:
    now = [0.0]
    failures = AuthFailures(3, 60.0, clock=lambda: now[0], max_addresses=2)
    for _ in range(3):
        failures.failed("10.0.0.1")
    assert failures.locked_for("10.0.0.1") is None
    failures.failed("10.0.0.1")
    assert failures.locked_for("10.0.0.1") == 60.0 and failures.locked_for("10.0.0.2") is None
    now[0] = 61.0
    assert failures.locked_for("10.0.0.1") is None
    for address in ("a", "b", "c"):
        failures.failed(address)
    assert len(failures._failures) == 2  # bounded memory


def test_key_labels_are_bounded() -> None:
    labels = KeyLabels(2)
    assert [labels(n) for n in ("a", "b", "c", "a", "d")] == ["a", "b", "other", "a", "other"]
