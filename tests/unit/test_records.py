"""``@record``: the same value semantics as a frozen dataclass in both of its builds (app/records.py)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from app import records
from app.domain import ChatRequest, Completion, StreamChunk, Usage


def sample(*, checked: bool, eq: bool = True, slots: bool = True) -> Any:
    class Point:
        x: int
        y: int = 0
        tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)
        norm: int = dataclasses.field(init=False, default=0)

        def __post_init__(self) -> None:  # the frozen-dataclass idiom for a derived field
            object.__setattr__(self, "norm", abs(self.x) + abs(self.y))

    Point.__annotations__ = {"x": "int", "y": "int", "tags": "tuple[str, ...]", "norm": "int"}
    return records.build_record(Point, eq=eq, slots=slots, checked=checked)


@pytest.mark.parametrize("checked", [True, False])
def test_value_semantics_match_a_frozen_dataclass(checked: bool) -> None:
    point = sample(checked=checked)
    a, b = point(1, -2), point(1, -2)
    assert a == b and a is not b
    assert hash(point(1, -2)) == hash(point(1, -2))
    assert {point(3, 4), point(3, 4)} == {point(3, 4)}
    assert a.norm == 3 and a.tags == ()
    assert repr(a).endswith("Point(x=1, y=-2, tags=(), norm=3)")
    assert dataclasses.replace(a, y=5) == point(1, 5) and dataclasses.replace(a, y=5).norm == 6
    assert [f.name for f in dataclasses.fields(point)] == ["x", "y", "tags", "norm"]
    assert point.__match_args__ == ("x", "y", "tags")
    assert not hasattr(a, "__dict__")  # slots
    match a:
        case point(x=1, y=y):
            assert y == -2
        case _:
            pytest.fail("no match")


def test_checked_records_refuse_assignment() -> None:
    a = sample(checked=True)(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.x = 2


def test_identity_records_keep_identity_equality() -> None:
    for checked in (True, False):
        point = sample(checked=checked, eq=False, slots=False)
        a = point(1)
        assert a != point(1) and a == a
        assert hash(a) == object.__hash__(a)


def test_records_pickle() -> None:
    usage = Usage(input_tokens=3, output_tokens=4)
    assert pickle.loads(pickle.dumps(usage)) == usage


def test_the_suite_runs_with_checked_records() -> None:
    """tests/__init__.py turns the checks on before app is imported: every record of the app is frozen here."""
    assert records.CHECKED
    for cls in (ChatRequest, Completion, StreamChunk, Usage):
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Usage().input_tokens = 1  # type: ignore[misc]
