"""Reading Gemini's answers: ``GenerateContentResponse`` JSON to canonical values, Google error objects to
typed errors, and the thought-signature-in-call-id scheme. Pure; shared by the codec (``google``) and its
stream decoder (``google_stream``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from app.domain import Choice, ReasoningPart, ToolCall, Usage
from app.errors import UpstreamBadRequestError, UpstreamError
from app.providers.base import Decoded, HttpAnswer, normalize_finish_reason
from app.providers.errors import from_status, malformed, sanitize

KIND = "google"

# google.rpc.ErrorInfo reasons that mean the credentials were refused (Gemini answers a bad key with 400)
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"})
# google.rpc status names -> HTTP status, for an error object whose ``code`` is missing
GRPC_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


# --- thought signatures inside call ids --------------------------------------------------------------

SIGNATURE_MARK = "__ts_"  # separates a call id from the Gemini thought signature carried inside it


def encode_call_id(call_id: str | None, signature: bytes | None) -> str:
    """The id clients see for a Gemini function call. Gemini's thinking models require a call's
    ``thoughtSignature`` back with the call in the next turn; OpenAI-style clients only echo the id, so
    the signature travels inside it (URL-safe base64, valid in OpenAI and Anthropic ids alike)."""
    base = call_id or f"call_{uuid.uuid4().hex[:24]}"
    if not signature:
        return base
    return f"{base}{SIGNATURE_MARK}{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def decode_call_id(call_id: str) -> bytes | None:
    """The thought signature carried in a call id made by ``encode_call_id`` (None if there is none)."""
    _, mark, encoded = call_id.partition(SIGNATURE_MARK)
    if not mark or not encoded:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (ValueError, binascii.Error):
        return None


def signature_bytes(value: object) -> bytes | None:
    """A REST ``thoughtSignature`` (base64 text, either alphabet) as bytes; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return None


# --- answers -----------------------------------------------------------------------------------------


def load_object(data: bytes | str, model: str, what: str) -> dict[str, Any]:
    """A JSON object from the wire, else ``malformed``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed(KIND, model, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise malformed(KIND, model, f"{what} is not a JSON object")
    return value


def _count(metadata: Mapping[str, Any], key: str, model: str) -> int:
    value = metadata.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise malformed(KIND, model, f"usageMetadata.{key} is not a token count")
    return value


def read_usage(payload: Mapping[str, Any], model: str) -> Usage | None:
    """Canonical usage of ``usageMetadata`` (None when absent)."""
    metadata = payload.get("usageMetadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise malformed(KIND, model, "usageMetadata is not an object")
    thoughts = _count(metadata, "thoughtsTokenCount", model)
    return Usage(
        input_tokens=_count(metadata, "promptTokenCount", model),
        output_tokens=_count(metadata, "candidatesTokenCount", model) + thoughts,
        cached_input_tokens=_count(metadata, "cachedContentTokenCount", model),
        reasoning_tokens=thoughts,
    )


def read_parts(candidate: Mapping[str, Any], model: str) -> list[dict[str, Any]]:
    """The parts of a candidate's content (none when it has no content, e.g. a safety stop)."""
    content = candidate.get("content")
    if content is None:
        return []
    if not isinstance(content, dict):
        raise malformed(KIND, model, "candidate content is not an object")
    parts = content.get("parts") or []
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise malformed(KIND, model, "candidate content.parts is not a list of objects")
    return parts


def read_call(part: Mapping[str, Any], model: str) -> ToolCall:
    """A ``functionCall`` part as a ToolCall whose id carries the part's thought signature."""
    call = part["functionCall"]
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise malformed(KIND, model, "functionCall has no name")
    args = call.get("args") or {}
    if not isinstance(args, dict):
        raise malformed(KIND, model, "functionCall.args is not an object")
    call_id = call.get("id") if isinstance(call.get("id"), str) else None
    signature = signature_bytes(part.get("thoughtSignature"))
    return ToolCall(id=encode_call_id(call_id, signature), name=call["name"], arguments=orjson.dumps(args).decode())


def read_text(part: Mapping[str, Any], model: str) -> str | None:
    text = part.get("text")
    if text is not None and not isinstance(text, str):
        raise malformed(KIND, model, "a text part is not a string")
    return text


def finish_reason(candidate: Mapping[str, Any], has_calls: bool) -> str | None:
    """The canonical finish reason; a STOP after function calls is ``tool_calls``."""
    reason = normalize_finish_reason(candidate.get("finishReason"))
    return "tool_calls" if has_calls and reason == "stop" else reason


def _choice(candidate: Any, position: int, model: str) -> Choice:
    if not isinstance(candidate, dict):
        raise malformed(KIND, model, "a candidate is not an object")
    if candidate.get("content") is None and candidate.get("finishReason") is None:
        raise malformed(KIND, model, "a candidate has neither content nor a finish reason")
    texts: list[str] = []
    reasoning: list[ReasoningPart] = []
    calls: list[ToolCall] = []
    for part in read_parts(candidate, model):
        if "functionCall" in part:
            calls.append(read_call(part, model))
            continue
        text = read_text(part, model)
        if text and part.get("thought") is True:
            reasoning.append(ReasoningPart(text=text, provider=KIND))
        elif text:
            texts.append(text)
    index = candidate.get("index", position)
    return Choice(
        index=index if isinstance(index, int) and not isinstance(index, bool) else position,
        content="".join(texts),
        finish_reason=finish_reason(candidate, bool(calls)),
        tool_calls=tuple(calls),
        reasoning=tuple(reasoning),
        logprobs=openai_logprobs(candidate.get("logprobsResult")),
    )


def _token_logprob(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("token"), str):
        return None
    token = item["token"]
    value = item.get("logProbability")
    logprob = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def openai_logprobs(result: Any) -> dict[str, Any] | None:
    """Gemini's ``logprobsResult`` in the canonical (OpenAI) shape: ``{"content": [{token, logprob, bytes,
    top_logprobs}], "refusal": None}``; None when there is none."""
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates")
    tops = result.get("topCandidates")
    if not isinstance(chosen, list):
        return None
    content = []
    for position, item in enumerate(chosen):
        entry = _token_logprob(item)
        if entry is None:
            continue
        top = tops[position] if isinstance(tops, list) and position < len(tops) else None
        candidates = top.get("candidates") if isinstance(top, dict) else None
        entry["top_logprobs"] = [t for t in map(_token_logprob, candidates or ()) if t is not None]
        content.append(entry)
    return {"content": content, "refusal": None}


def blocked_error(payload: Mapping[str, Any], model: str) -> UpstreamError | None:
    """The error for a prompt Gemini refused (``promptFeedback.blockReason``), None if it was not."""
    feedback = payload.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not reason:
        return None
    return UpstreamBadRequestError(
        f"{KIND} blocked the prompt: {sanitize(reason)}",
        provider=KIND,
        model=model,
        upstream_status=200,
        block_reason=sanitize(reason),
    )


def decode_payload(payload: Mapping[str, Any], model: str) -> Decoded:
    """A ``GenerateContentResponse`` object in canonical form."""
    if "error" in payload:
        raise error_from_object(payload.get("error"), None, {}, model)
    candidates = payload.get("candidates")
    if not candidates:
        blocked = blocked_error(payload, model)
        raise blocked if blocked is not None else malformed(KIND, model, "the answer has no candidates")
    if not isinstance(candidates, list):
        raise malformed(KIND, model, "candidates is not a list")
    choices = sorted((_choice(c, i, model) for i, c in enumerate(candidates)), key=lambda c: c.index)
    first = choices[0]
    version = payload.get("modelVersion")
    return Decoded(
        content=first.content,
        finish_reason=first.finish_reason,
        usage=read_usage(payload, model),
        tool_calls=first.tool_calls,
        reasoning=first.reasoning,
        logprobs=first.logprobs,
        upstream_model=version if isinstance(version, str) else None,
        more_choices=tuple(choices[1:]),
    )


# --- errors ------------------------------------------------------------------------------------------


def _retry_delay(details: list[Any]) -> str | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "34s"``)."""
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return str(float(delay[:-1]))
                except ValueError:
                    return None
    return None


def error_from_object(error: object, http_status: int | None, headers: Mapping[str, str], model: str) -> UpstreamError:
    """The typed error for Google's ``{"code", "message", "status", "details"}`` (``http_status`` None
    for an error inside a 200 answer or a stream: the object's own code decides)."""
    if not isinstance(error, dict):
        return from_status(http_status or 502, "an error without details", provider=KIND, model=model, headers=headers)
    grpc_status = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    if grpc_status == "RESOURCE_EXHAUSTED":
        status = 429
    elif http_status is not None:
        status = http_status
    elif isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        status = code
    else:
        status = GRPC_STATUS.get(grpc_status or "", 500)
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    auth_failed = any(
        isinstance(d, dict)
        and str(d.get("@type", "")).endswith("google.rpc.ErrorInfo")
        and d.get("reason") in AUTH_REASONS
        for d in details
    )
    merged = dict(headers)
    delay = _retry_delay(details)
    if delay is not None and not any(k.lower() in ("retry-after", "retry-after-ms") for k in merged):
        merged["retry-after"] = delay
    message = sanitize(error.get("message") or grpc_status or "")
    return from_status(status, message, provider=KIND, model=model, headers=merged, auth_failed=auth_failed)


def error_from_answer(answer: HttpAnswer, model: str) -> UpstreamError:
    """The typed error for a non-2xx answer: Google's error object when the body has one, else by status."""
    try:
        payload = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]  # some Google front ends wrap the error object in a list
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return error_from_object(payload["error"], answer.status, answer.headers, model)
    generic = f"HTTP {answer.status} without a Google error body"
    return from_status(answer.status, generic, provider=KIND, model=model, headers=answer.headers)
