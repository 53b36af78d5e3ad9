"""Fake LLM vendor upstreams (OpenAI, Anthropic, Gemini) for tests; see ``server.FakeUpstream``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.scripts import Reply

if TYPE_CHECKING:
    from tests.fakes.server import ANY_MODEL, FakeUpstream, RecordedRequest

__all__ = ["ANY_MODEL", "FakeUpstream", "RecordedRequest", "Reply"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m tests.fakes.server`` does not import the server module twice.
    if name in ("ANY_MODEL", "FakeUpstream", "RecordedRequest"):
        from tests.fakes import server

        return getattr(server, name)
    raise AttributeError(name)
