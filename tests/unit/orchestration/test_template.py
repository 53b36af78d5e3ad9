"""Pipeline templates and the pipeline config's variable checks."""

from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.orchestration.template import TemplateSyntaxError, missing, render, variables
from app.settings.catalogue import parse_config

MODELS = {"m": {"provider": "openai_compatible", "api_base": "http://127.0.0.1:1/v1"}}


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("plain text", ()),
        ("{topic}", ("topic",)),
        ("About {topic}: {queries} and {topic} again", ("topic", "queries")),
        ("literal {{braces}} and {x}", ("x",)),
    ],
)
def test_variables(template: str, names: tuple[str, ...]) -> None:
    assert variables(template) == names


@pytest.mark.parametrize("template", ["{a.b}", "{a[0]}", "{a!r}", "{a:>10}", "{}", "{0}", "unclosed {a", "}"])
def test_only_plain_names_are_allowed(template: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        variables(template)


def test_render_substitutes_verbatim() -> None:
    assert render("Q: {q} {{x}}", {"q": "{not a field}"}) == "Q: {not a field} {x}"
    assert missing("{a} {b}", {"a": "1"}) == ("b",)
    with pytest.raises(KeyError):
        render("{a}", {})


def _pipeline(**pipeline: object) -> dict:
    return {"models": MODELS, "pipelines": {"p": pipeline}}


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ({"steps": []}, "at least 1"),
        ({"inputs": ["topic"], "steps": [{"name": "a", "model": "m", "prompt_template": "{other}"}]}, "'other'"),
        (
            {
                "inputs": ["t"],
                "steps": [
                    {"name": "a", "model": "m", "prompt_template": "{b}"},
                    {"name": "b", "model": "m", "prompt_template": "{t}"},
                ],
            },
            "later step",
        ),
        ({"steps": [{"name": "a", "model": "nope", "prompt_template": "x"}]}, "unknown model 'nope'"),
        ({"steps": [{"name": "a", "model": "m", "routing": "auto", "prompt_template": "x"}]}, "not both"),
        ({"steps": [{"name": "a", "model": "m", "prompt_template": "{a.b}"}]}, "plain name"),
        (
            {
                "steps": [
                    {"name": "a", "model": "m", "prompt_template": "x", "output_key": "k"},
                    {"name": "b", "model": "m", "prompt_template": "y", "output_key": "k"},
                ]
            },
            "already used",
        ),
    ],
)
def test_invalid_pipelines_are_config_errors(pipeline: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_pipeline(**pipeline))
    assert message in str(info.value)
    assert "pipelines.p" in str(info.value)


def test_required_inputs_are_derived_when_not_declared() -> None:
    config = parse_config(
        _pipeline(
            steps=[
                {"name": "a", "model": "m", "prompt_template": "{topic} {style}"},
                {"name": "b", "routing": "auto", "prompt_template": "{a} {topic} {tone}"},
            ]
        )
    )
    assert config.pipelines["p"].required_inputs() == ("topic", "style", "tone")


@pytest.mark.parametrize(
    ("orchestration", "message"),
    [
        ({"default_fallbacks": ["ghost"]}, "unknown model 'ghost'"),
        ({"judge_model": "ghost"}, "unknown model 'ghost'"),
        ({"request_timeout_s": 100, "max_request_timeout_s": 50}, "must not exceed"),
        ({"max_retries": -1}, "max_retries"),
        ({"breaker": {"cooldown_s": 0}}, "cooldown_s"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_invalid_orchestration_is_a_config_error(orchestration: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"models": MODELS, "orchestration": orchestration})
    assert message in str(info.value)


def test_shipped_config_has_the_research_pipeline() -> None:
    from app.settings.catalogue import load_config
    from app.settings.settings import DEFAULT_CONFIG

    config = load_config(DEFAULT_CONFIG)
    research = config.pipelines["research"]
    assert [s.name for s in research.steps] == ["queries", "synthesis", "summary"]
    assert research.required_inputs() == ("topic",)
