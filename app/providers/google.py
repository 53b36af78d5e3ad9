"""Google Gemini over its REST API (``generateContent`` / ``streamGenerateContent?alt=sse``), as a pure codec.

Request: system messages become ``systemInstruction``; the other turns become alternating ``contents``
(roles ``user`` and ``model``; tool results are ``functionResponse`` parts of a user turn, named after
the call they answer). Images and PDFs travel as ``inlineData``; an ``https`` image must arrive already
inlined (``image_urls`` is False: the gateway fetches it with its SSRF guard first), a file URL becomes
``fileData`` (Gemini fetches it itself). Tools are ``functionDeclarations`` with ``parametersJsonSchema``:
Gemini validates calls against that schema, so ``strict`` needs no flag of its own. Gemini has no control
over parallel calls (``parallel_tool_control`` False) and no logit bias.

Reasoning: an effort becomes ``thinkingConfig.thinkingBudget`` (``THINKING_BUDGETS``; an explicit
``budget_tokens`` wins) with ``includeThoughts`` so thought summaries come back as reasoning. Gemini's
thinking models sign their function calls (``thoughtSignature``) and require the signature back with the
call in the next turn: OpenAI-style clients only echo call ids, so the signature travels inside the id
(``encode_call_id``). That is all the state a Gemini turn needs back: reasoning parts of an assistant
turn (Gemini's own thought summaries included) are not sent upstream, and signatures on non-call parts
(which Gemini documents as optional to return) are not kept.

Answer: ``candidates[i].content.parts`` (``thought: true`` parts are reasoning), ``finishReason``,
``logprobsResult`` (kept as Gemini sends it) and ``usageMetadata`` (``thoughtsTokenCount`` is added to
``candidatesTokenCount``: reasoning tokens are part of the output). Errors: ``{"error": {code, message,
status, details}}``; a bad key answers 400 with an ``ErrorInfo`` reason, which is an auth failure here.
Answers and errors are read in ``google_decode``, streams in ``google_stream``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from app.domain import ChatRequest, FilePart, ImagePart, Message, TextPart
from app.errors import InvalidRequestError, UpstreamError
from app.providers.base import Capabilities, Decoded, HttpAnswer, HttpCall, ModelTarget, StreamDecoder
from app.providers.codec_util import tool_arguments
from app.providers.google_decode import (
    KIND,
    SIGNATURE_MARK,
    decode_call_id,
    decode_payload,
    encode_call_id,
    error_from_answer,
    load_object,
)
from app.providers.google_stream import GeminiStreamDecoder

__all__ = ["CODEC", "SIGNATURE_MARK", "THINKING_BUDGETS", "GoogleCodec", "decode_call_id", "encode_call_id"]

API_VERSION = "v1beta"
SSE_QUERY: Mapping[str, str] = {"alt": "sse"}
PDF = "application/pdf"

# reasoning effort -> Gemini thinking budget (tokens); an explicit budget_tokens wins
THINKING_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}

CAPABILITIES = Capabilities(
    images=True,
    image_urls=False,
    files=True,
    json_schema=True,
    json_object=True,
    tools=True,
    strict_tools=True,  # parametersJsonSchema is enforced by Gemini itself
    parallel_tool_control=False,
    reasoning=True,
    logprobs=True,
    logit_bias=False,
    seed=True,
    penalties=True,
    top_k=True,
    native_n=True,
    droppable=frozenset(),
)


# --- request -----------------------------------------------------------------------------------------


def to_function_response(content: str, is_error: bool = False) -> dict[str, Any]:
    """A tool result as Gemini's ``response`` object: a JSON object result as is, anything else under the
    documented ``output`` key (``error`` for a failed call)."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, ValueError):
        value = content
    if is_error:
        return {"error": value}
    return value if isinstance(value, dict) else {"output": value}


def _media_part(part: ImagePart | FilePart, where: str) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        if part.data is None:
            raise InvalidRequestError(
                f"{where}: Gemini cannot fetch image URLs; the image must be inlined (base64) first", param=where
            )
        if not part.media_type:
            raise InvalidRequestError(f"{where}: an inline image needs its media type", param=where)
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type or PDF, "data": part.data}}
    if part.url:
        return {"fileData": {"mimeType": part.media_type or PDF, "fileUri": part.url}}
    raise InvalidRequestError(f"{where}: Gemini takes files inline or by URL, not by file id", param=where)


def _content_parts(message: Message, index: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(message.content_parts):
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        else:
            parts.append(_media_part(part, f"messages[{index}].content[{j}]"))
    return parts


def to_gemini_contents(messages: tuple[Message, ...]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The ``systemInstruction`` content and the ``contents`` list (roles ``user`` and ``model``,
    consecutive turns of one role merged)."""
    system_text = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    system = {"parts": [{"text": system_text}]} if system_text else None
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role == "system":
            continue
        parts: list[dict[str, Any]]
        if message.role == "tool":
            name = message.name or names.get(message.tool_call_id or "", "tool")
            response = to_function_response(message.content, message.is_error)
            parts = [{"functionResponse": {"name": name, "response": response}}]
        else:
            parts = _content_parts(message, index)
            for call in message.tool_calls:
                part: dict[str, Any] = {"functionCall": {"name": call.name, "args": tool_arguments(call.arguments)}}
                signature = decode_call_id(call.id)
                if signature is not None:
                    part["thoughtSignature"] = base64.b64encode(signature).decode()
                parts.append(part)
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts or [{"text": ""}])
        else:
            contents.append({"role": role, "parts": parts or [{"text": ""}]})
    return system, contents


def to_gemini_tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """``tool_choice`` as ``toolConfig``: auto/none/required -> AUTO/NONE/ANY, a named function -> ANY
    restricted to it."""
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(choice)
        if mode is None:
            raise InvalidRequestError(f"tool_choice {choice!r} is not one Gemini can express", param="tool_choice")
        return {"functionCallingConfig": {"mode": mode}}
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else choice.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("tool_choice names no function", param="tool_choice")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def thinking_config(request: ChatRequest) -> dict[str, Any] | None:
    """``thinkingConfig`` for the request's reasoning (None when it asked for none)."""
    reasoning = request.reasoning
    if reasoning is None:
        return None
    budget = reasoning.budget_tokens
    if budget is None and reasoning.effort is not None:
        budget = THINKING_BUDGETS[reasoning.effort]
    config: dict[str, Any] = {}
    if budget is not None:
        config["thinkingBudget"] = budget
    if budget != 0:
        config["includeThoughts"] = True
    return config


def generation_config(request: ChatRequest) -> dict[str, Any]:
    """``generationConfig``: sampling, output format and thinking."""
    config: dict[str, Any] = {}
    optional = (
        ("maxOutputTokens", request.max_tokens),
        ("temperature", request.temperature),
        ("topP", request.top_p),
        ("topK", request.top_k),
        ("seed", request.seed),
        ("presencePenalty", request.presence_penalty),
        ("frequencyPenalty", request.frequency_penalty),
    )
    config.update((key, value) for key, value in optional if value is not None)
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.n > 1:
        config["candidateCount"] = request.n
    if request.logprobs:
        config["responseLogprobs"] = True
        if request.top_logprobs is not None:
            config["logprobs"] = request.top_logprobs
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        config["responseMimeType"] = "application/json"
        if response_format.type == "json_schema" and response_format.schema is not None:
            config["responseJsonSchema"] = response_format.schema
    thinking = thinking_config(request)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def to_gemini_body(request: ChatRequest) -> dict[str, Any]:
    """The ``GenerateContentRequest`` JSON body (camelCase, as the REST API documents it)."""
    if request.logit_bias:
        raise InvalidRequestError("Gemini does not support logit_bias", param="logit_bias")
    system, contents = to_gemini_contents(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    if request.tools:
        declarations = []
        for tool in request.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description:
                declaration["description"] = tool.description
            if tool.parameters:
                declaration["parametersJsonSchema"] = tool.parameters
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
        tool_config = to_gemini_tool_config(request.tool_choice)
        if tool_config is not None:
            body["toolConfig"] = tool_config
    config = generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


def model_path(upstream_model: str, method: str) -> str:
    """``/v1beta/models/{model}:{method}`` (a ``models/`` prefix in the catalogue id is accepted)."""
    model = upstream_model.removeprefix("models/")
    return f"/{API_VERSION}/models/{quote(model, safe='-._~')}:{method}"


# --- the codec ---------------------------------------------------------------------------------------


class GoogleCodec:
    """The Gemini API (generativelanguage ``v1beta``) over REST."""

    kind: ClassVar[str] = KIND
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    protocol: ClassVar[str | None] = None

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"x-goog-api-key": api_key} if api_key else {}

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return CAPABILITIES

    def encode(self, request: ChatRequest, target: ModelTarget, *, stream: bool) -> HttpCall:
        body = orjson.dumps(to_gemini_body(request))
        if stream:
            path = model_path(target.upstream_model, "streamGenerateContent")
            return HttpCall(path=path, body=body, stream=True, query=dict(SSE_QUERY))
        return HttpCall(path=model_path(target.upstream_model, "generateContent"), body=body)

    def decode(self, answer: HttpAnswer, request: ChatRequest, target: ModelTarget) -> Decoded:
        return decode_payload(load_object(answer.body, target.name, "the answer"), target.name)

    def stream_decoder(self, request: ChatRequest, target: ModelTarget) -> StreamDecoder:
        return GeminiStreamDecoder(target.name, choices=max(1, request.n))

    def error(self, answer: HttpAnswer, target: ModelTarget) -> UpstreamError:
        return error_from_answer(answer, target.name)


CODEC = GoogleCodec()
