"""Who is making the current request: set by the governance middleware, read by planning (model permissions)
and by the call meter (budget reservations). Outside a governed request (no master key configured, or
background work) there is no principal and nothing is restricted or metered."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from app.records import record
from app.state.records import KeyRecord


@record(slots=True)
class Principal:
    """The master key (``record`` None) or a virtual key, as validated at ``validated_at`` (monotonic)."""

    record: KeyRecord | None = None
    validated_at: float = 0.0

    @property
    def is_master(self) -> bool:
        return self.record is None

    def permits(self, model: str) -> bool:
        return self.record is None or self.record.permits(model)

    @property
    def restricted(self) -> bool:
        """Whether some models are outside this principal's rights."""
        return self.record is not None and self.record.models is not None


MASTER = Principal()

_current: ContextVar[Principal | None] = ContextVar("switchyard_principal", default=None)


def current_principal() -> Principal | None:
    return _current.get()


def bind_principal(principal: Principal | None) -> Token[Principal | None]:
    return _current.set(principal)


def unbind_principal(token: Token[Principal | None]) -> None:
    _current.reset(token)


def permits(model: str) -> bool:
    """Whether the current request may call ``model`` (always, outside a governed request)."""
    principal = _current.get()
    return principal is None or principal.permits(model)


# The budget holds taken during the current request: the middleware settles any left open when it ends
# (a stream whose client vanished before it was read), so no reservation outlives its request.
_holds: ContextVar[list[Any] | None] = ContextVar("switchyard_holds", default=None)


def bind_holds(holds: list[Any]) -> Token[list[Any] | None]:
    return _holds.set(holds)


def unbind_holds(token: Token[list[Any] | None]) -> None:
    _holds.reset(token)


def request_holds() -> list[Any] | None:
    return _holds.get()
