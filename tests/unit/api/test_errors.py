"""The one error-to-HTTP module: OpenAI's error shape for every error, and pydantic validation failures as
400s with the dotted ``param`` and OpenAI's ``code``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import BaseModel, Field, ValidationError

from app.api.errors import code_of, error_object, invalid_request, openai_error_event, param_of
from app.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    UpstreamRateLimitError,
    UpstreamStreamError,
)


def test_every_error_has_message_type_param_and_code() -> None:
    assert error_object(GatewayError("boom")) == {
        "message": "boom",
        "type": "internal_error",
        "param": None,
        "code": "internal_error",
    }
    assert error_object(ModelNotFoundError("no such model", model="x", param="model")) == {
        "message": "no such model",
        "type": "model_not_found",
        "param": "model",
        "code": "model_not_found",
        "model": "x",
    }
    limited = error_object(UpstreamRateLimitError("slow down", retry_after=2, provider="openai", model="m"))
    assert (limited["type"], limited["code"], limited["retry_after"], limited["provider"]) == (
        "rate_limited",
        "rate_limited",
        2,
        "openai",
    )
    coded = error_object(InvalidRequestError("bad", param="n", code="integer_above_max_value"))
    assert (coded["param"], coded["code"]) == ("n", "integer_above_max_value")


def test_openai_error_event() -> None:
    event = openai_error_event(UpstreamStreamError("cut", provider="openai", model="m"))
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    error = orjson.loads(event.removeprefix(b"data: "))["error"]
    assert (error["type"], error["code"], error["message"], error["model"]) == (
        "upstream_stream_error",
        "upstream_stream_error",
        "cut",
        "m",
    )


@pytest.mark.parametrize(
    ("loc", "param"),
    [
        (("body", "messages", 0, "content"), "messages.0.content"),
        (("stop", "str"), "stop"),
        (("stop", "list[str]", 1), "stop.1"),
        (("tool_choice", "literal['none','auto','required']"), "tool_choice"),
        (("tool_choice", "ToolChoiceIn", "function"), "tool_choice.function"),
        (("hedge", "function-after[check(), HedgeIn]", "delay_s"), "hedge.delay_s"),
        (("metadata", "key", "[key]"), "metadata.key"),
        (("body",), None),
        ((), None),
    ],
)
def test_param_of(loc: tuple[Any, ...], param: str | None) -> None:
    assert param_of(loc) == param


class Sample(BaseModel):
    name: str
    count: int = Field(default=1, ge=1, le=10)
    ratio: float = Field(default=0.5, ge=0, le=1)
    items: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=2)
    tag: str = Field(default="x", max_length=3)


def errors_of(data: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(data)
    return caught.value.errors()  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "missing_required_parameter"),
        ({"name": 1}, "invalid_type"),
        ({"name": "a", "count": 11}, "integer_above_max_value"),
        ({"name": "a", "count": 0}, "integer_below_min_value"),
        ({"name": "a", "ratio": 2}, "decimal_above_max_value"),
        ({"name": "a", "ratio": -0.5}, "decimal_below_min_value"),
        ({"name": "a", "items": []}, "empty_array"),
        ({"name": "a", "items": [1, 2, 3]}, "array_above_max_length"),
        ({"name": "a", "tag": "long"}, "string_above_max_length"),
    ],
)
def test_codes(data: dict[str, Any], code: str) -> None:
    assert code_of(errors_of(data)[0]) == code


def test_invalid_request_picks_the_deepest_error_and_lists_all() -> None:
    error = invalid_request(
        [
            {"type": "string_type", "loc": ("stop", "str"), "msg": "Input should be a valid string", "input": [1]},
            {
                "type": "string_type",
                "loc": ("stop", "list[str]", 0),
                "msg": "Input should be a valid string",
                "input": 1,
            },
        ]
    )
    assert error.status_code == 400
    body = error_object(error)
    assert (body["param"], body["code"], body["message"]) == (
        "stop.0",
        "invalid_type",
        "stop.0: Input should be a valid string",
    )
    assert [e["field"] for e in body["errors"]] == ["stop", "stop.0"]


def test_a_model_level_error_has_no_param() -> None:
    error = error_object(
        invalid_request([{"type": "value_error", "loc": (), "msg": "Value error, give one of a or b"}])
    )
    assert (error["param"], error["message"], error["code"]) == (None, "give one of a or b", "invalid_value")
