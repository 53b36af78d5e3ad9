"""Immutable dataclasses that are cheap to build: ``@record`` is ``@dataclass(frozen=True)``, less its cost.

A frozen dataclass's generated ``__init__`` sets every field with ``object.__setattr__`` (it has to step
around its own assignment guard), about five times the cost of a plain assignment. A request builds some
80 such values (the canonical request, messages, routing decisions, attempts, completions, chunks, usage),
and those calls were 14% of its instructions (bench/results/PROFILE.md). A record's ``__init__`` assigns
its fields directly; equality, hashing (by fields, as a frozen dataclass), ``repr``, ``replace``,
``fields`` and pattern matching are the same.

Immutability stays a rule, enforced twice: statically, by mypy, which sees every record as a frozen
dataclass (``dataclass_transform(frozen_default=True)``) and refuses an assignment to a field anywhere in
``app/``; at run time by the test suite, which sets ``SWITCHYARD_CHECK_RECORDS=1`` so that every record is
built as a real frozen dataclass and raises ``FrozenInstanceError`` on assignment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, dataclass_transform, overload

T = TypeVar("T")

CHECKED = os.environ.get("SWITCHYARD_CHECK_RECORDS", "").strip().lower() in ("1", "true", "yes")


def build_record(cls: type[T], *, eq: bool, slots: bool, checked: bool) -> type[T]:
    """``cls`` as a frozen dataclass (``checked``), or as the same dataclass with direct field assignment."""
    if checked:
        return dataclass(frozen=True, eq=eq, slots=slots)(cls)
    # unsafe_hash with eq: the field-wise __hash__ that frozen=True with eq=True generates
    return dataclass(eq=eq, slots=slots, unsafe_hash=eq)(cls)


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, eq: bool = True, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True)
def record(
    cls: type[T] | None = None, /, *, eq: bool = True, slots: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """``@record``, ``@record(slots=True)``, ``@record(eq=False)``: see the module docstring."""

    def wrap(target: type[T]) -> type[T]:
        return build_record(target, eq=eq, slots=slots, checked=CHECKED)

    return wrap if cls is None else wrap(cls)
