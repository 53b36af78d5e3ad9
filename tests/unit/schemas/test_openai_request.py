"""Decoding OpenAI chat bodies into the canonical request: what real clients send is carried, what cannot
be honoured is a 400 naming the field (``param``) with OpenAI's ``code``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.api.errors import error_object
from app.domain import FilePart, ImagePart, Message, Reasoning, ResponseFormat, TextPart, ToolCall, ToolSpec
from app.errors import InvalidRequestError
from app.schemas.openai_request import DecodedChat, decode_chat, parse_json_object

USER = [{"role": "user", "content": "hello"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def decode(**fields: Any) -> DecodedChat:
    return decode_chat({"model": "gpt-4o-mini", "messages": USER, **fields})


def refused(body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(InvalidRequestError) as caught:
        decode_chat(body)
    assert caught.value.status_code == 400
    return error_object(caught.value)


def test_a_plain_request() -> None:
    chat = decode(max_tokens=5, temperature=0.2, top_p=0.9, stop="END", user="u-1")
    request = chat.request
    assert request.messages == (Message("user", "hello"),)
    assert (request.max_tokens, request.temperature, request.top_p, request.stop) == (5, 0.2, 0.9, ("END",))
    assert request.user == "u-1"
    assert (request.n, request.logprobs, request.response_format, request.reasoning) == (1, False, None, None)
    assert chat.ignored == () and chat.passthrough_only == () and not chat.stream


def test_source_is_the_clients_body_exactly() -> None:
    body = {"model": "gpt-4o-mini", "messages": USER, "x_vendor": {"deep": [1, 2]}, "seed": 3}
    chat = decode_chat(body)
    assert chat.request.source is not None
    assert chat.request.source.protocol == "openai.chat"
    assert chat.request.source.body is body


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert decode(max_tokens=10, max_completion_tokens=20).request.max_tokens == 20


def test_every_sampling_and_droppable_option_is_carried() -> None:
    request = decode(
        seed=42,
        presence_penalty=-1.5,
        frequency_penalty=2,
        logprobs=True,
        top_logprobs=5,
        logit_bias={"50256": -100, "13": 5.5},
        n=3,
        verbosity="low",
        service_tier="flex",
        store=True,
        prompt_cache_key="pk",
        safety_identifier="sid",
        user="u",
        metadata={"team": "a", "run": "7"},
        reasoning_effort="xhigh",
        top_k=40,
    ).request
    assert (request.seed, request.presence_penalty, request.frequency_penalty) == (42, -1.5, 2)
    assert (request.logprobs, request.top_logprobs, request.n) == (True, 5, 3)
    assert request.logit_bias == {"50256": -100, "13": 5.5}
    assert (request.verbosity, request.service_tier, request.store) == ("low", "flex", True)
    assert (request.prompt_cache_key, request.safety_identifier, request.user) == ("pk", "sid", "u")
    assert request.metadata == {"team": "a", "run": "7"}
    assert request.reasoning == Reasoning(effort="xhigh")
    assert request.top_k == 40


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh"])
def test_reasoning_efforts(effort: str) -> None:
    assert decode(reasoning_effort=effort).request.reasoning == Reasoning(effort=effort)  # type: ignore[arg-type]


def test_noop_values_ask_for_nothing() -> None:
    request = decode(
        n=1, logprobs=False, top_logprobs=0, response_format={"type": "text"}, logit_bias={}, modalities=["text"]
    ).request
    assert (request.n, request.logprobs, request.top_logprobs, request.response_format, request.logit_bias) == (
        1,
        False,
        None,
        None,
        None,
    )


def test_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    spec = {"name": "Answer", "schema": schema, "strict": True, "description": "the answer"}
    request = decode(response_format={"type": "json_schema", "json_schema": spec}).request
    assert request.response_format == ResponseFormat("json_schema", "Answer", schema, True, "the answer")
    assert decode(response_format={"type": "json_object"}).request.response_format == ResponseFormat("json_object")


def test_tools_with_strict_choice_and_parallel_control() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}, "strict": True},
        },
        {"type": "function", "function": {"name": "other"}},
    ]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    request = decode(tools=tools, tool_choice=choice, parallel_tool_calls=False).request
    assert request.tools == (ToolSpec("get_weather", "d", {"type": "object"}, True), ToolSpec("other"))
    assert request.tool_choice == choice
    assert request.parallel_tool_calls is False
    for mode in ("auto", "none", "required"):
        assert decode(tools=tools, tool_choice=mode).request.tool_choice == mode


def test_parallel_tool_calls_without_tools_means_nothing() -> None:
    assert decode(parallel_tool_calls=False).request.parallel_tool_calls is None


def test_allowed_tools_choice_is_its_mode_over_the_allowed_tools() -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("a", "b", "c")]
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "b"}}]},
    }
    request = decode(tools=tools, tool_choice=choice).request
    assert [t.name for t in request.tools] == ["b"]
    assert request.tool_choice == "required"


def test_image_parts_by_data_url_and_https_url() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    message = decode(messages=[{"role": "user", "content": content}]).request.messages[0]
    assert message.content == "what is this?"
    assert message.parts == (
        TextPart("what is this?"),
        ImagePart(data=PNG, media_type="image/png", detail="high"),
        ImagePart(url="https://example.com/cat.jpg"),
    )
    assert message.has_media


def test_file_parts() -> None:
    content = [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        {"type": "file", "file": {"filename": "b.pdf", "file_data": "JVBERi0y"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
    ]
    message = decode(messages=[{"role": "user", "content": content}]).request.messages[0]
    assert message.parts == (
        FilePart(data="JVBERi0x", media_type="application/pdf", filename="a.pdf"),
        FilePart(data="JVBERi0y", media_type="application/pdf", filename="b.pdf"),
        FilePart(file_id="file-abc"),
    )


def test_text_parts_join_and_cache_control_is_kept() -> None:
    plain = [{"type": "text", "text": "only"}]
    assert decode(messages=[{"role": "user", "content": plain}]).request.messages[0] == Message("user", "only")
    cached = [{"type": "text", "text": "long system prompt", "cache_control": {"type": "ephemeral"}}]
    system = decode(messages=[{"role": "system", "content": cached}, *USER]).request.messages[0]
    assert system.role == "system"
    assert system.parts == (TextPart("long system prompt", {"type": "ephemeral"}),)


def test_roles() -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "system", "content": "and kind"},
        {"role": "user", "content": "hi", "name": "ada"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "42"}]},
    ]
    decoded = decode(messages=messages).request.messages
    assert [m.role for m in decoded] == ["system", "system", "user", "assistant", "tool"]
    assert decoded[2].name == "ada"
    assert decoded[3].tool_calls == (ToolCall("call_1", "f", "{}"),)
    assert (decoded[4].tool_call_id, decoded[4].content) == ("call_1", "42")


def test_stored_assistant_history_with_output_only_fields_is_accepted() -> None:
    """What the OpenAI API returns in a message goes back in the next request's history (openai SDK
    ``message.model_dump()``, LangChain, the Agents SDK)."""
    assistant = {
        "role": "assistant",
        "content": "It is sunny.",
        "refusal": None,
        "annotations": [{"type": "url_citation", "url_citation": {"url": "https://x", "title": "x"}}],
        "audio": None,
        "function_call": None,
        "tool_calls": None,
        "reasoning_content": "thinking about the weather",
        "reasoning": "some servers use this name",
    }
    messages = [*USER, assistant, {"role": "user", "content": "thanks"}]
    decoded = decode(messages=messages).request.messages
    assert decoded[1] == Message("assistant", "It is sunny.")


def test_a_refused_turn_keeps_its_refusal_as_its_text() -> None:
    refusal = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    parts = {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}
    decoded = decode(messages=[*USER, refusal, *USER, parts, *USER]).request.messages
    assert decoded[1].content == "I can't help with that."
    assert decoded[3].content == "No."


def test_streaming_flags() -> None:
    chat = decode(stream=True, stream_options={"include_usage": True, "include_obfuscation": False})
    assert chat.stream and chat.include_usage
    assert not decode(stream=True).include_usage


def test_unknown_fields_are_ignored_and_named_not_refused() -> None:
    chat = decode(made_up_option=1, prediction={"type": "content", "content": "x"}, extra_thing=None)
    assert chat.ignored == ("made_up_option", "extra_thing", "prediction")


def test_fields_only_an_openai_upstream_honours() -> None:
    chat = decode(web_search_options={"search_context_size": "low"})
    assert chat.passthrough_only == ("web_search_options",)
    assert decode(functions=[{"name": "f"}], function_call="auto").passthrough_only == ("functions", "function_call")


def _with(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": USER, **fields}


def _messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": list(messages)}


REFUSED = [
    ({"messages": USER}, "model", "missing_required_parameter"),
    (_with(messages=[]), "messages", "empty_array"),
    (_with(messages="hi"), "messages", "invalid_type"),
    (_with(temperature=9), "temperature", "decimal_above_max_value"),
    (_with(temperature="0.5"), "temperature", "invalid_type"),
    (_with(top_p=-0.1), "top_p", "decimal_below_min_value"),
    (_with(presence_penalty=3), "presence_penalty", "decimal_above_max_value"),
    (_with(frequency_penalty=-2.5), "frequency_penalty", "decimal_below_min_value"),
    (_with(n=0), "n", "integer_below_min_value"),
    (_with(n=129), "n", "integer_above_max_value"),
    (_with(max_tokens=0), "max_tokens", "integer_below_min_value"),
    (_with(top_logprobs=21, logprobs=True), "top_logprobs", "integer_above_max_value"),
    (_with(top_logprobs=3), "top_logprobs", "invalid_value"),
    (_with(logit_bias={"abc": 1}), "logit_bias.abc", "invalid_value"),
    (_with(logit_bias={"12": 101}), "logit_bias.12", "decimal_above_max_value"),
    (_with(metadata={f"k{i}": "v" for i in range(17)}), "metadata", "array_above_max_length"),
    (_with(metadata={"k": 1}), "metadata.k", "invalid_type"),
    (_with(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length"),
    (_with(stop=["a", 5]), "stop.1", "invalid_type"),
    (_with(verbosity="loud"), "verbosity", "invalid_value"),
    (_with(reasoning_effort="max"), "reasoning_effort", "invalid_value"),
    (_with(stream="yes"), "stream", "invalid_type"),
    (_with(modalities=["text", "audio"]), "modalities.1", "unsupported_value"),
    (_with(audio={"voice": "alloy", "format": "wav"}), "audio", "unsupported_parameter"),
    (_with(tool_choice="required"), "tool_choice", "invalid_value"),
    (_with(tool_choice="sometimes"), "tool_choice", "invalid_value"),
    (
        _with(
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice={"type": "function", "function": {"name": "g"}},
        ),
        "tool_choice.function.name",
        "invalid_value",
    ),
    (_with(tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools.0.function.name", "invalid_value"),
    (_with(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools.0.type", "invalid_value"),
    (_with(tools=[{"type": "function"}]), "tools.0.function", "missing_required_parameter"),
    (_with(response_format={"type": "json_schema"}), "response_format.json_schema", "missing_required_parameter"),
    (_with(response_format={"type": "xml"}), "response_format.type", "invalid_value"),
    (_messages({"role": "wizard", "content": "x"}), "messages.0.role", "invalid_value"),
    (_messages({"role": "function", "name": "f", "content": "x"}), "messages.0.role", "unsupported_value"),
    (_messages({"role": "tool", "content": "x"}), "messages.0.tool_call_id", "missing_required_parameter"),
    (_messages({"role": "user", "content": 5}), "messages.0.content", "invalid_type"),
    (_messages({"content": "x"}), "messages.0.role", "missing_required_parameter"),
    (
        _messages(
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}
        ),
        "messages.0.content.0.type",
        "unsupported_value",
    ),
    (_messages({"role": "user", "content": [{"type": "video"}]}), "messages.0.content.0.type", "invalid_value"),
    (_messages({"role": "user", "content": [{"type": "text"}]}), "messages.0.content.0.text", "invalid_type"),
    (
        _messages({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}),
        "messages.0.content.0.image_url.url",
        "invalid_value",
    ),
    (
        _messages(
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]}
        ),
        "messages.0.content.0.image_url.url",
        "invalid_value",
    ),
    (
        _messages({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}),
        "messages.0.content.0.image_url.url",
        "invalid_value",
    ),
    (
        _messages(
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x", "detail": "max"}}]}
        ),
        "messages.0.content.0.image_url.detail",
        "invalid_value",
    ),
    (
        _messages({"role": "user", "content": [{"type": "file", "file": {}}]}),
        "messages.0.content.0.file.file_data",
        "missing_required_parameter",
    ),
    (
        _messages({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}),
        "messages.0.content.0.type",
        "invalid_value",
    ),
    (
        _messages(*USER, {"role": "assistant", "audio": {"id": "audio_123"}}),
        "messages.1.audio",
        "unsupported_parameter",
    ),
    (
        _messages(*USER, {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}),
        "messages.1.function_call",
        "unsupported_parameter",
    ),
    (
        _messages(
            *USER,
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]},
        ),
        "messages.1.tool_calls.0.function.name",
        "missing_required_parameter",
    ),
]


@pytest.mark.parametrize(("body", "param", "code"), REFUSED)
def test_refused_with_param_and_code(body: dict[str, Any], param: str, code: str) -> None:
    error = refused(body)
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code), error["message"]
    assert error["message"]


def test_missing_parameter_message_is_openais() -> None:
    assert refused({"messages": USER})["message"] == "Missing required parameter: 'model'."


def test_every_validation_error_is_listed() -> None:
    error = refused(_with(temperature=9, top_p=2))
    assert {e["field"] for e in error["errors"]} == {"temperature", "top_p"}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"model": ', "malformed JSON"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"model": "m", "temperature": NaN}', "NaN and Infinity"),
        (b'{"model": "m", "temperature": Infinity}', "NaN and Infinity"),
        (b'{"model": "m", "temperature": -Infinity}', "NaN and Infinity"),
        (b'{"model": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"model": "\xff"}', "UTF-8"),
        (b'{"a": 1} trailing', "malformed JSON"),
        (b"[1, 2]", "not an array"),
        (b'"text"', "not a string"),
        (b"42", "not a number"),
        (b"null", "not null"),
    ],
)
def test_bodies_that_are_not_json_objects(raw: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_object(raw)
    error = error_object(caught.value)
    assert needle in error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] is None
    assert error["code"] in ("invalid_json", "invalid_type")


def test_json_is_parsed_as_sent() -> None:
    raw = b'{"model": "m", "messages": [], "big": 12345678901234567, "u": "\\u00e9\\ud83d\\ude00"}'
    assert parse_json_object(raw) == orjson.loads(raw)
    assert parse_json_object(raw)["u"] == "\u00e9\U0001f600"


def test_ignored_names_are_fit_for_a_header() -> None:
    chat = decode(**{"ok_name": 1, "bad\r\nx-injected: 1": 2, "caf\u00e9": 3, "x" * 65: 4})
    assert chat.ignored == ("ok_name", "other(3)")
    many = decode(**{f"f{i}": i for i in range(40)})
    assert len(many.ignored) == 33 and many.ignored[-1] == "other(8)"
