"""What the client tests share: the four catalogue models (one per provider), scripted replies, and the
checks of what each vendor received at the fake upstream (the request in that vendor's own shape)."""

from __future__ import annotations

import json
import random
import struct
import zlib
from typing import Any

from pydantic import BaseModel

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream, RecordedRequest

# one catalogue model per provider kind (tests/support.py fake_models), every one played by the fake upstream
MODELS = ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
PROVIDER = {
    "gpt-4o-mini": "openai",
    "claude-3-5-sonnet-20241022": "anthropic",
    "gemini-2.0-flash": "google",
    "compat-llama": "openai_compatible",
}
UPSTREAM_ID = {"compat-llama": "llama3"}
REASONING = {"gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash"}  # openai_compatible: refused
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PNG_URL = f"data:image/png;base64,{PNG}"
WEATHER_JSON = {"city": "Paris", "celsius": 21}
CALL_WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}


class Weather(BaseModel):
    """The structured output every client asks for."""

    city: str
    celsius: int


def script(upstream: FakeUpstream, model: str, *replies: Reply) -> None:
    upstream.script(UPSTREAM_ID.get(model, model), *replies)


def json_reply(data: Any = None) -> Reply:
    return Reply(text=json.dumps(WEATHER_JSON if data is None else data))


def json_mode_reply(model: str, data: Any = None) -> Reply:
    """A ``json_object`` answer as the vendor gives it: Anthropic's JSON mode is a forced tool whose input
    is the answer; the others answer JSON text."""
    data = WEATHER_JSON if data is None else data
    if PROVIDER[model] == "anthropic":
        return Reply(tool_calls=[{"name": "json_object", "arguments": data}])
    return json_reply(data)


def one(upstream: FakeUpstream, n: int = 1) -> list[RecordedRequest]:
    """The generation requests the fake got (exactly ``n``)."""
    requests = [r for r in upstream.requests if r.path != "/v1/models"]
    assert len(requests) == n, [(r.vendor, r.path) for r in requests]
    return requests


def last(upstream: FakeUpstream) -> RecordedRequest:
    requests = [r for r in upstream.requests if r.path != "/v1/models"]
    assert requests, "the fake upstream got no request"
    return requests[-1]


def body(request: RecordedRequest) -> dict[str, Any]:
    assert isinstance(request.body, dict), request.body
    return request.body


def check_vendor(request: RecordedRequest, model: str) -> None:
    """The call went to the model's vendor, with its upstream model id and its stream flag."""
    vendor = {"openai_compatible": "openai"}.get(PROVIDER[model], PROVIDER[model])
    assert request.vendor == vendor
    assert request.model == UPSTREAM_ID.get(model, model)


def check_stream(request: RecordedRequest) -> None:
    assert request.stream
    if request.vendor == "google":
        assert request.path.endswith(":streamGenerateContent") and request.query.get("alt") == "sse"
    elif request.vendor == "openai":
        assert body(request)["stream_options"]["include_usage"] is True  # the gateway meters every stream


def _schema_props(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("properties") or {})


def check_json_schema(request: RecordedRequest, props: frozenset[str] = frozenset({"city", "celsius"})) -> None:
    """``response_format: json_schema`` in the vendor's form: OpenAI's own, Anthropic structured outputs
    (``output_config.format``), Gemini ``responseJsonSchema`` with ``responseMimeType``."""
    data = body(request)
    if request.vendor == "openai":
        spec = data["response_format"]
        assert spec["type"] == "json_schema", spec
        schema = spec["json_schema"]["schema"]
    elif request.vendor == "anthropic":
        spec = data["output_config"]["format"]
        assert spec["type"] == "json_schema", spec
        schema = spec["schema"]
        assert schema.get("additionalProperties") is False  # what constrained decoding demands
    else:
        config = data["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        schema = config["responseJsonSchema"]
    assert props <= _schema_props(schema), schema


def check_json_object(request: RecordedRequest) -> None:
    """``response_format: json_object``: OpenAI's own; Anthropic's JSON mode (a forced tool); Gemini's
    JSON MIME type without a schema."""
    data = body(request)
    if request.vendor == "openai":
        assert data["response_format"] == {"type": "json_object"}
    elif request.vendor == "anthropic":
        assert data["tool_choice"]["type"] == "tool" and data["tool_choice"]["name"] == "json_object"
        assert [t["name"] for t in data["tools"]] == ["json_object"]
    else:
        config = data["generationConfig"]
        assert config["responseMimeType"] == "application/json" and "responseJsonSchema" not in config


def tool_spec(request: RecordedRequest, name: str) -> dict[str, Any]:
    """The declaration of tool ``name`` as the vendor got it (Gemini: the function declaration)."""
    data = body(request)
    if request.vendor == "google":
        declarations = [d for t in data["tools"] for d in t.get("functionDeclarations", ())]
        found = [d for d in declarations if d["name"] == name]
    elif request.vendor == "anthropic":
        found = [t for t in data["tools"] if t["name"] == name]
    else:
        found = [t["function"] for t in data["tools"] if t["function"]["name"] == name]
    assert found, f"tool {name!r} not sent: {json.dumps(data.get('tools'))}"
    return found[0]


def check_tool(
    request: RecordedRequest,
    name: str,
    *,
    strict: bool | None = None,
    parallel: bool | None = None,
    forced: bool | None = None,
) -> None:
    """Tool ``name`` reached the vendor with its schema; ``strict``: OpenAI/Anthropic ``strict: true``
    (Gemini enforces ``parametersJsonSchema`` itself); ``parallel=False``: OpenAI
    ``parallel_tool_calls: false``, Anthropic ``disable_parallel_tool_use`` (Gemini has no such control);
    ``forced``: the vendor's "call this tool" choice."""
    data = body(request)
    spec = tool_spec(request, name)
    if request.vendor == "google":
        assert "parametersJsonSchema" in spec or "parameters" in spec, spec
        if forced:
            config = data["toolConfig"]["functionCallingConfig"]
            assert config["mode"] == "ANY" and config.get("allowedFunctionNames", [name]) == [name], config
        return
    if request.vendor == "anthropic":
        assert spec["input_schema"]["type"] == "object"
        if strict:
            assert spec.get("strict") is True, spec
        if parallel is False:
            assert data["tool_choice"]["disable_parallel_tool_use"] is True, data.get("tool_choice")
        if forced:
            assert data["tool_choice"]["type"] in ("tool", "any"), data["tool_choice"]
        return
    assert spec["parameters"]["type"] == "object"
    if strict:
        assert spec.get("strict") is True, spec
    if parallel is False:
        assert data["parallel_tool_calls"] is False
    if forced:
        assert data["tool_choice"] in ("required", {"type": "function", "function": {"name": name}}), data[
            "tool_choice"
        ]


def check_tool_result(request: RecordedRequest, name: str, result_text: str) -> None:
    """The second turn of a tool loop carries the model's call and the tool's result in the vendor's form."""
    data = body(request)
    dumped = json.dumps(data)
    assert result_text in dumped, dumped
    if request.vendor == "openai":
        roles = [m["role"] for m in data["messages"]]
        assert "tool" in roles, roles
        calls = [c for m in data["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
        assert any(c["function"]["name"] == name for c in calls), data["messages"]
    elif request.vendor == "anthropic":
        blocks = [b for m in data["messages"] if isinstance(m["content"], list) for b in m["content"]]
        assert any(b["type"] == "tool_use" and b["name"] == name for b in blocks), blocks
        assert any(b["type"] == "tool_result" for b in blocks), blocks
    else:
        parts = [p for c in data["contents"] for p in c["parts"]]
        assert any("functionCall" in p and p["functionCall"]["name"] == name for p in parts), parts
        assert any("functionResponse" in p and p["functionResponse"]["name"] == name for p in parts), parts


def check_image(request: RecordedRequest, data: str = PNG, media_type: str = "image/png") -> None:
    """A ``data:`` URL image: OpenAI ``image_url`` as sent; an Anthropic ``image`` block (base64);
    Gemini ``inlineData``."""
    sent = body(request)
    if request.vendor == "openai":
        parts = [p for m in sent["messages"] if isinstance(m.get("content"), list) for p in m["content"]]
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        assert f"data:{media_type};base64,{data}" in urls, parts
    elif request.vendor == "anthropic":
        blocks = [b for m in sent["messages"] if isinstance(m["content"], list) for b in m["content"]]
        images = [b for b in blocks if b["type"] == "image"]
        assert {"type": "base64", "media_type": media_type, "data": data} in [b["source"] for b in images], blocks
    else:
        parts = [p for c in sent["contents"] for p in c["parts"]]
        assert {"mimeType": media_type, "data": data} in [p.get("inlineData") for p in parts], parts


def check_reasoning(request: RecordedRequest, effort: str) -> None:
    """``reasoning_effort``: OpenAI's own; an Anthropic thinking budget; a Gemini thinking budget."""
    data = body(request)
    if request.vendor == "openai":
        assert data["reasoning_effort"] == effort
    elif request.vendor == "anthropic":
        assert data["thinking"]["type"] == "enabled" and data["thinking"]["budget_tokens"] >= 1024, data
        assert data["max_tokens"] > data["thinking"]["budget_tokens"]
    else:
        thinking = data["generationConfig"]["thinkingConfig"]
        assert thinking["thinkingBudget"] > 0 and thinking.get("includeThoughts") is True, thinking


def user_text(request: RecordedRequest) -> str:
    """All the text the request carried (to check a prompt arrived)."""
    return json.dumps(body(request))


def noise_png(width: int, height: int, seed: int = 7) -> bytes:
    """A valid RGB PNG of random pixels (incompressible: about ``3 * width * height`` bytes), the size of
    an ordinary photo a client sends."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")
