"""Reasoning of other vendors inside Anthropic ``thinking`` blocks: the signature rule. Pure.

An Anthropic client carries every ``thinking`` block back with its ``signature`` (and every
``redacted_thinking`` with its ``data``), and Anthropic refuses a block whose signature it did not make. So
a translated answer never hands out an empty or a foreign signature as if it were Anthropic's: reasoning made
by another vendor (OpenAI, Gemini, a compatible server) gets a gateway-made signature, ``swy1.`` and the
URL-safe base64 of ``{"p": vendor, "s": the vendor's own signature or "", "r": redacted}`` (the envelope the
Responses front-end puts in ``encrypted_content``, ``app.schemas.responses_items``). Anthropic's signatures
are standard base64, which has no ``.``, so the prefix cannot be mistaken for one.

Both ways:
- the client's next turn to a translated target: ``open_signature`` gives the reasoning back to its vendor
  (``ReasoningPart.provider`` and signature), so each codec keeps or drops it as its vendor needs;
- to an Anthropic upstream (the pass-through, which otherwise sends the client's body as it is):
  ``strip_foreign_thinking`` removes the gateway-signed blocks, which Anthropic would refuse, and turns
  ``thinking`` off when the last assistant turn that called tools is left without its thinking block
  (Anthropic refuses such a history with thinking on, as the translated path does, see
  ``app.providers.anthropic_request``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from app.records import record

GATEWAY_SIGNATURE = "swy1."
ANTHROPIC = "anthropic"


@record(slots=True)
class ForeignSignature:
    """What a gateway-made signature says: whose reasoning, its own signature (None: unsigned), redacted."""

    provider: str
    signature: str | None
    redacted: bool


def seal_signature(provider: str, signature: str | None, *, redacted: bool = False) -> str:
    """The gateway-made signature of reasoning by ``provider`` (not Anthropic) with its own ``signature``."""
    envelope = {"p": provider, "s": signature or "", "r": redacted}
    return GATEWAY_SIGNATURE + base64.urlsafe_b64encode(orjson.dumps(envelope)).decode()


def thinking_signature(owner: str, signature: str | None, *, redacted: bool = False) -> str:
    """The ``signature`` (or ``redacted_thinking.data``) a client gets for reasoning by ``owner``: Anthropic's
    own as it came, anyone else's sealed."""
    if owner == ANTHROPIC and signature:
        return signature
    return seal_signature(owner or "unknown", signature, redacted=redacted)


def is_gateway_signature(value: object) -> bool:
    return isinstance(value, str) and value.startswith(GATEWAY_SIGNATURE)


def open_signature(value: str) -> ForeignSignature | None:
    """The contents of a gateway-made signature; None for any other value (Anthropic's own signatures). A
    broken envelope is reasoning of an unknown vendor, unsigned."""
    if not value.startswith(GATEWAY_SIGNATURE):
        return None
    encoded = value[len(GATEWAY_SIGNATURE) :]
    try:
        envelope = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("p"), str):
        return ForeignSignature("unknown", None, False)
    signature = envelope.get("s") if isinstance(envelope.get("s"), str) else None
    return ForeignSignature(envelope["p"], signature or None, envelope.get("r") is True)


def _gateway_block(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    if block.get("type") == "thinking":
        return is_gateway_signature(block.get("signature"))
    return block.get("type") == "redacted_thinking" and is_gateway_signature(block.get("data"))


def _calls_without_thinking(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if not isinstance(content, list) or not content:
        return False
    calls = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
    first = content[0].get("type") if isinstance(content[0], dict) else None
    return calls and first not in ("thinking", "redacted_thinking")


def strip_foreign_thinking(body: dict[str, Any]) -> dict[str, Any] | None:
    """``body`` (a Messages request) without the gateway-signed reasoning blocks of its assistant turns (a
    turn left empty goes too), or None when it has none (the body then goes as it is)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    out: list[Any] = []
    stripped_last = False  # blocks were removed from the last assistant turn
    changed = False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(message, dict) or message.get("role") != "assistant" or not isinstance(content, list):
            out.append(message)
            continue
        kept = [b for b in content if not _gateway_block(b)]
        stripped_last = len(kept) != len(content)
        changed = changed or stripped_last
        if kept:
            out.append({**message, "content": kept} if stripped_last else message)
    if not changed:
        return None
    new = {**body, "messages": out}
    last = next((m for m in reversed(out) if isinstance(m, dict) and m.get("role") == "assistant"), None)
    if stripped_last and last is not None and _calls_without_thinking(last):
        new.pop("thinking", None)  # Anthropic refuses a tool-use turn without its thinking, thinking on
    return new
