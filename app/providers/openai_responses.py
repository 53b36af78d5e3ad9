"""OpenAI's Responses API as an upstream (``POST {base}/responses``), for the same-protocol pass-through of
``/v1/responses`` (``request.source.protocol == "openai.responses"``) to provider kind ``openai``.

The client's body goes as it was sent with only ``model`` replaced (and ``stream`` when the gateway's call
differs); reasoning items another vendor made (``encrypted_content`` in Switchyard's envelope, or no id) are
left out (they mean nothing to OpenAI), and ids the gateway made for translated answers are taken off items.
The answer comes back byte for byte (``Decoded.passthrough``; streamed: every event's ``raw`` bytes); it is
also read into canonical values for usage, cost and stored responses: output text, function calls
(``call_id`` is the canonical id), reasoning (summary text, ``encrypted_content`` as the signature), the
``incomplete`` status as a ``length`` finish, a ``failed`` one as its typed error.
"""

from __future__ import annotations

from typing import Any

from app.domain import Passthrough, ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.errors import UpstreamError, UpstreamStreamError
from app.providers.base import Decoded, SSEEvent
from app.providers.errors import malformed
from app.providers.openai_decode import body_error, load_object, typed_error
from app.providers.openai_decode import parse_usage as chat_usage

PROTOCOL = "openai.responses"
PATH = "/responses"
GATEWAY_REASONING = "swy1."  # app.schemas.responses_items: Switchyard's envelope for another vendor's reasoning
GATEWAY_ID_MARK = "sy"  # app.schemas.responses_response: ids the gateway makes are ``<prefix>_sy<hex>``


def _foreign_reasoning(item: Any) -> bool:
    """A reasoning item another vendor made: in Switchyard's envelope, or without the id OpenAI's own have
    (a stored translated answer's)."""
    if not isinstance(item, dict) or item.get("type") != "reasoning":
        return False
    encrypted = item.get("encrypted_content")
    return "id" not in item or (isinstance(encrypted, str) and encrypted.startswith(GATEWAY_REASONING))


def passthrough_body(source: dict[str, Any], upstream_model: str, *, stream: bool) -> dict[str, Any]:
    """The client's Responses body for the upstream: only the gateway-owned fields replaced."""
    body = dict(source)
    body["model"] = upstream_model
    if stream:
        body["stream"] = True
    elif body.get("stream"):
        body.pop("stream")
        body.pop("stream_options", None)
    items = body.get("input")
    if isinstance(items, list) and any(_foreign_reasoning(i) or _gateway_id(i) for i in items):
        body["input"] = [_without_gateway_id(i) for i in items if not _foreign_reasoning(i)]
    return body


def _gateway_id(item: Any) -> bool:
    """An item with an id the gateway made for a translated answer (``msg_sy...``, ``fc_sy...``), which OpenAI
    would look up and not find."""
    ident = item.get("id") if isinstance(item, dict) else None
    return isinstance(ident, str) and ident.partition("_")[2].startswith(GATEWAY_ID_MARK)


def _without_gateway_id(item: Any) -> Any:
    return {k: v for k, v in item.items() if k != "id"} if _gateway_id(item) else item


# --- answers ----------------------------------------------------------------------------------------------


RESPONSES_USAGE = ("input_tokens", "output_tokens")


def parse_usage(raw: object, provider: str, model: str) -> Usage | None:
    """Canonical usage of a Responses ``usage`` object (``openai_decode.parse_usage`` with its names)."""
    return chat_usage(raw, provider, model, RESPONSES_USAGE, counts_required=False)


def _texts(parts: object, key: str) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(p[key] for p in parts if isinstance(p, dict) and isinstance(p.get(key), str))


def reasoning_of(item: dict[str, Any], provider: str) -> ReasoningPart:
    text = _texts(item.get("content"), "text") or _texts(item.get("summary"), "text")
    encrypted = item.get("encrypted_content")
    return ReasoningPart(text=text, signature=encrypted if isinstance(encrypted, str) else None, provider=provider)


def call_of(item: dict[str, Any], provider: str, model: str) -> ToolCall:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not isinstance(name, str) or not name:
        raise malformed(provider, model, "a function_call item has no call_id or name")
    return ToolCall(call_id, name, arguments if isinstance(arguments, str) and arguments else "{}")


def failure(response: dict[str, Any], provider: str, model: str) -> UpstreamError:
    """The typed error of a ``failed`` response (its ``error.code``: rate limits 429, else 500)."""
    error = response.get("error") if isinstance(response.get("error"), dict) else {}
    assert isinstance(error, dict)
    status = 429 if error.get("code") == "rate_limit_exceeded" else 500
    return typed_error(status, {"error": error}, provider=provider, model=model)


def finish_of(response: dict[str, Any], calls: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def decode_response(body: bytes, *, provider: str, model: str) -> Decoded:
    """A ``response`` object in canonical form, its bytes kept for the pass-through."""
    data = load_object(body, provider, model)
    error = body_error(data, provider=provider, model=model)
    if error is not None:
        raise error
    if data.get("status") == "failed":
        raise failure(data, provider, model)
    output = data.get("output")
    if not isinstance(output, list):
        raise malformed(provider, model, "a response without output")
    text, refusal, calls, reasoning = [], [], [], []
    for item in output:
        if not isinstance(item, dict):
            raise malformed(provider, model, "an output item is not an object")
        kind = item.get("type")
        if kind == "message":
            text.append(_texts(item.get("content"), "text"))
            refusal.append(_texts(item.get("content"), "refusal"))
        elif kind == "function_call":
            calls.append(call_of(item, provider, model))
        elif kind == "reasoning":
            reasoning.append(reasoning_of(item, provider))
    upstream_model = data.get("model")
    return Decoded(
        content="".join(text),
        finish_reason=finish_of(data, bool(calls)),
        usage=parse_usage(data.get("usage"), provider, model),
        tool_calls=tuple(calls),
        reasoning=tuple(reasoning),
        refusal="".join(refusal) or None,
        upstream_model=upstream_model if isinstance(upstream_model, str) else None,
        passthrough=Passthrough(PROTOCOL, body),
    )


class ResponsesStreamDecoder:
    """Decodes a Responses event stream; every chunk carries its event's ``raw`` bytes (the pass-through).
    ``response.completed`` / ``response.incomplete`` is held back and returned as ``finish()``'s chunk;
    ``response.failed`` and ``error`` events raise their typed error."""

    def __init__(self, *, provider: str, model: str) -> None:
        self._provider, self._model = provider, model
        self._final: dict[str, Any] | None = None
        self._final_raw: bytes | None = None
        self._tools: dict[int, int] = {}  # output_index -> tool call index

    @property
    def done(self) -> bool:
        return self._final is not None

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data.strip()
        if not data or data == "[DONE]":
            return [StreamChunk(raw=event.raw)]
        body = load_object(data, self._provider, self._model, "stream event")
        kind = body.get("type")
        if kind == "error":
            status = 429 if body.get("code") == "rate_limit_exceeded" else 500
            raise typed_error(status, {"error": body}, provider=self._provider, model=self._model)
        response = body.get("response")
        if kind == "response.failed" and isinstance(response, dict):
            raise failure(response, self._provider, self._model)
        if kind in ("response.completed", "response.incomplete") and isinstance(response, dict):
            self._final, self._final_raw = response, event.raw
            return []
        return [self._chunk(kind, body, event.raw)]

    def _chunk(self, kind: object, body: dict[str, Any], raw: bytes) -> StreamChunk:
        index = body.get("output_index")
        if kind == "response.output_text.delta" and isinstance(body.get("delta"), str):
            return StreamChunk(delta=body["delta"], raw=raw)
        if kind == "response.refusal.delta" and isinstance(body.get("delta"), str):
            return StreamChunk(refusal=body["delta"], raw=raw)
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            delta = body.get("delta")
            return StreamChunk(reasoning=delta if isinstance(delta, str) else "", raw=raw)
        item = body.get("item")
        added = kind == "response.output_item.added" and isinstance(item, dict) and isinstance(index, int)
        if added and isinstance(item, dict) and isinstance(index, int) and item.get("type") == "function_call":
            self._tools[index] = len(self._tools)
            call = ToolCallDelta(self._tools[index], _str(item.get("call_id")), _str(item.get("name")))
            return StreamChunk(tool_calls=(call,), raw=raw)
        if kind == "response.function_call_arguments.delta" and index in self._tools:
            delta = body.get("delta")
            call = ToolCallDelta(self._tools[index], arguments=delta if isinstance(delta, str) else "")
            return StreamChunk(tool_calls=(call,), raw=raw)
        if kind == "response.output_item.done" and isinstance(item, dict) and item.get("type") == "reasoning":
            encrypted = item.get("encrypted_content")
            if isinstance(encrypted, str) and encrypted:
                return StreamChunk(signature=encrypted, raw=raw)
        return StreamChunk(raw=raw)

    def finish(self) -> StreamChunk:
        final = self._final
        if final is None:
            raise UpstreamStreamError(
                "the upstream stream ended before the response completed", provider=self._provider, model=self._model
            )
        output = final.get("output") if isinstance(final.get("output"), list) else []
        calls = any(isinstance(i, dict) and i.get("type") == "function_call" for i in output or ())
        usage = parse_usage(final.get("usage"), self._provider, self._model)
        return StreamChunk(finish_reason=finish_of(final, calls), usage=usage, raw=self._final_raw)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
