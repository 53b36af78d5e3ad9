"""Per-request orchestration choices, as given by the client (``/v1/complete`` fields)."""

from __future__ import annotations

from typing import Literal

from app.records import record

Strategy = Literal["race", "all", "consensus", "vote"]
SelectorName = Literal["agreement", "longest", "shortest", "cheapest"]


@record(slots=True)
class HedgeOptions:
    """Hedge the primary model: ``delay_s`` None means the configured delay or the observed p95."""

    delay_s: float | None = None


@record(slots=True)
class RunOptions:
    """``strategy`` applies to parallel routing; ``hedge`` to single-answer routing; ``timeout_s`` is
    the request's overall deadline (None: the configured default)."""

    strategy: Strategy | None = None
    judge: str | None = None
    selector: SelectorName | None = None
    hedge: HedgeOptions | None = None
    timeout_s: float | None = None
