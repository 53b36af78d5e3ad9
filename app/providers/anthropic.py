"""Anthropic Messages API codec (``POST /v1/messages``), pure. The request translation is in
``app.providers.anthropic_request``; the stream decoder and the usage / error readers in
``app.providers.anthropic_stream``.

Answers: ``text`` blocks -> content, ``tool_use`` -> tool calls (arguments = the JSON text of ``input``),
``thinking`` / ``redacted_thinking`` -> reasoning parts signed by Anthropic, ``stop_reason`` -> the finish
reason (``refusal`` -> ``content_filter``, the text moving to ``refusal``), usage with cache reads and
writes counted in the input (OpenAI's convention). JSON mode (``json_object``) is a forced tool: its call
is the answer's text, finished with ``stop`` (see ``app.providers.anthropic_request``). Anthropic has no
seed, penalties, logprobs or logit bias: ``CAPABILITIES`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import orjson

from app.domain import ChatRequest, Passthrough, ReasoningPart, ToolCall
from app.errors import UpstreamError
from app.providers.anthropic_request import JSON_OBJECT_NAME, json_object_mode, to_anthropic_body
from app.providers.anthropic_stream import (
    KIND,
    PROTOCOL,
    AnthropicStreamDecoder,
    parse_json,
    required_text,
    to_usage,
    typed_error,
    usage_fields,
)
from app.providers.anthropic_thinking import strip_foreign_thinking
from app.providers.base import Capabilities, Decoded, HttpAnswer, HttpCall, ModelTarget, normalize_finish_reason
from app.providers.errors import from_status, malformed
from app.providers.json_splice import splice

ANTHROPIC_VERSION = "2023-06-01"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# Messages fields that count_tokens does not take (it refuses unknown fields)
NOT_COUNTED = frozenset(
    {"max_tokens", "stream", "metadata", "stop_sequences", "temperature", "top_p", "top_k", "service_tier"}
)
REFUSAL_NOTE = "the model declined to answer"

CAPABILITIES = Capabilities(
    images=True,
    image_urls=True,
    files=True,  # PDF documents
    json_schema=True,
    json_object=True,  # a forced tool whose input is the answer (see app.providers.anthropic_request)
    tools=True,
    strict_tools=True,
    parallel_tool_control=True,
    reasoning=True,
    logprobs=False,
    logit_bias=False,
    seed=False,
    penalties=False,
    top_k=True,
    native_n=False,
    droppable=frozenset({"user"}),  # user -> metadata.user_id; Anthropic's metadata holds nothing else
)


# --- answer ------------------------------------------------------------------------------------------


def decode_message(
    data: object, model: str, headers: Mapping[str, str] | None = None, *, json_object: bool = False
) -> Decoded:
    """A Messages answer (its parsed JSON) in canonical form; ``UpstreamError`` when it is an error body,
    malformed, or empty without a stop reason. ``json_object``: the request was in JSON mode, so a call of
    its tool is the answer's text (compact JSON), not a tool call, and its ``tool_use`` stop is ``stop``."""
    if not isinstance(data, dict):
        raise malformed(KIND, model, "the answer is not a JSON object")
    if data.get("type") == "error" or ("error" in data and "content" not in data):
        raise typed_error(data.get("error"), model, headers=headers)
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed(KIND, model, "the message has no content list")
    stop_reason = data.get("stop_reason")
    if stop_reason is not None and not isinstance(stop_reason, str):
        raise malformed(KIND, model, "stop_reason is not a string")
    if not content and stop_reason is None:
        raise malformed(KIND, model, "an empty message without a stop reason")
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningPart] = []
    answered = False  # JSON mode's tool was called
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str):
            raise malformed(KIND, model, "a content block has no type")
        if kind == "text":
            texts.append(required_text(block.get("text"), model, "text"))
        elif kind == "tool_use":
            arguments = block.get("input") if block.get("input") is not None else {}
            if not isinstance(arguments, dict):
                raise malformed(KIND, model, "tool_use.input is not an object")
            call_id, name = (
                required_text(block.get("id"), model, "tool_use.id"),
                required_text(block.get("name"), model, "name"),
            )
            if json_object and name == JSON_OBJECT_NAME:
                answered = True
                texts.append(orjson.dumps(arguments).decode())
            else:
                calls.append(ToolCall(id=call_id, name=name, arguments=orjson.dumps(arguments).decode()))
        elif kind == "thinking":
            text = required_text(block.get("thinking"), model, "thinking")
            signature = block.get("signature")
            reasoning.append(ReasoningPart(text, signature if isinstance(signature, str) else None, provider=KIND))
        elif kind == "redacted_thinking":
            secret = required_text(block.get("data"), model, "redacted_thinking.data")
            reasoning.append(ReasoningPart(signature=secret, redacted=True, provider=KIND))
        # server tool blocks (web search results, ...) have no canonical form: skipped
    text = "".join(texts)
    refusal = None
    if stop_reason == "refusal":
        text, refusal = "", text or REFUSAL_NOTE
    if answered and not calls and stop_reason == "tool_use":
        stop_reason = "end_turn"
    upstream_model = data.get("model")
    return Decoded(
        content=text,
        finish_reason=normalize_finish_reason(stop_reason),
        usage=to_usage(usage_fields(data.get("usage"), model)),
        tool_calls=tuple(calls),
        reasoning=tuple(reasoning),
        refusal=refusal,
        upstream_model=upstream_model if isinstance(upstream_model, str) else None,
    )


# --- the codec ---------------------------------------------------------------------------------------


def client_body(body: dict[str, Any]) -> dict[str, Any]:
    """The client's Messages body as an Anthropic upstream gets it: as sent, but for the reasoning blocks
    the gateway signed for another vendor, which Anthropic would refuse (``app.providers.anthropic_thinking``)."""
    stripped = strip_foreign_thinking(body)
    return body if stripped is None else stripped


def _is_passthrough(request: ChatRequest) -> bool:
    return request.source is not None and request.source.protocol == PROTOCOL


class AnthropicCodec:
    """The Anthropic Messages API (``x-api-key``, ``anthropic-version``)."""

    kind: ClassVar[str] = KIND
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    protocol: ClassVar[str | None] = PROTOCOL
    path: ClassVar[str] = "/v1/messages"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return CAPABILITIES

    def encode(self, request: ChatRequest, target: ModelTarget, *, stream: bool) -> HttpCall:
        """The Messages call. A pass-through request (the client spoke the Messages API) goes as the client
        sent it, with only ``model`` (and ``stream``, which the gateway decides) replaced, and the
        client's protocol headers (``anthropic-beta``)."""
        source = request.source
        if source is not None and source.protocol == PROTOCOL:
            body = {**client_body(source.body), "model": target.upstream_model}
            if stream:
                body["stream"] = True
            elif body.get("stream"):
                body.pop("stream")
            encoded = splice(source.raw, source.body, body)
            return HttpCall(self.path, encoded, stream=stream, headers=dict(source.headers))
        return HttpCall(self.path, orjson.dumps(to_anthropic_body(request, target, stream=stream)), stream=stream)

    def encode_count_tokens(self, request: ChatRequest, target: ModelTarget) -> HttpCall:
        """The ``count_tokens`` call for ``request``: the client's Messages body as it is (only ``model``
        replaced, the fields count_tokens does not take removed) for a pass-through request, else the
        translated body; the client's protocol headers (``anthropic-beta``) go along."""
        source = request.source
        if source is not None and source.protocol == PROTOCOL:
            body, headers = dict(client_body(source.body)), dict(source.headers)
        else:
            body, headers = to_anthropic_body(request, target, stream=False), {}
        body = {k: v for k, v in body.items() if k not in NOT_COUNTED}
        body["model"] = target.upstream_model
        return HttpCall(COUNT_TOKENS_PATH, orjson.dumps(body), headers=headers)

    def decode_count_tokens(self, answer: HttpAnswer, target: ModelTarget) -> int:
        """``input_tokens`` of a count_tokens answer; the typed error for an error answer or a malformed one."""
        if not 200 <= answer.status < 300:
            raise self.error(answer, target)
        data = parse_json(answer.body, target.name, "the count_tokens answer")
        count = data.get("input_tokens") if isinstance(data, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise malformed(KIND, target.name, "the count_tokens answer has no input_tokens count")
        return count

    def decode(self, answer: HttpAnswer, request: ChatRequest, target: ModelTarget) -> Decoded:
        data = parse_json(answer.body, target.name, "the answer")
        if not _is_passthrough(request):
            return decode_message(data, target.name, answer.headers, json_object=json_object_mode(request))
        decoded = decode_message(data, target.name, answer.headers)
        passthrough = Passthrough(PROTOCOL, answer.body, answer.content_type or "application/json")
        return replace(decoded, passthrough=passthrough)

    def stream_decoder(self, request: ChatRequest, target: ModelTarget) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(request, target, passthrough=_is_passthrough(request))

    def error(self, answer: HttpAnswer, target: ModelTarget) -> UpstreamError:
        """Typed by the HTTP status, refined by Anthropic's error type; a body that is not Anthropic's
        error JSON (an HTML page from a proxy) still gets its status's type, with a generic message."""
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return typed_error(error, target.name, status=answer.status, headers=answer.headers)
        message = f"HTTP {answer.status} without an error body"
        return from_status(answer.status, message, provider=KIND, model=target.name, headers=answer.headers)


CODEC = AnthropicCodec()
