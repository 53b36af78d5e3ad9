"""Vendor-neutral translation helpers (each codec's own translators are tested in tests/unit/providers/)."""

from __future__ import annotations

import pytest

from app.providers.base import normalize_finish_reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("stop", "stop"),
        (None, None),
    ],
)
def test_finish_reasons_are_normalised(raw: str | None, expected: str | None) -> None:
    assert normalize_finish_reason(raw) == expected
