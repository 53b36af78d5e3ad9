"""The YAML catalogue: valid files load, invalid ones name the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigError
from app.pricing import resolve_price
from app.settings.catalogue import ModelConfig, load_config, parse_config

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.yaml"


def test_shipped_config_is_valid() -> None:
    config = load_config(REPO_CONFIG)
    assert "gpt-4o-mini" in config.models
    assert config.routing.complexity.simple == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("models: {}\n", "<root>", "at least one model"),
        ("models:\n  m: {provider: nope}\n", "models.m.provider", "unknown provider"),
        ("models:\n  m: {provider: openai_compatible}\n", "models.m", "requires api_base"),
        ("models:\n  m: {provider: openai, timeout_s: -1}\n", "models.m.timeout_s", "greater than 0"),
        ("models:\n  m: {provider: openai, fallbacks: [ghost]}\n", "<root>", "unknown model 'ghost'"),
        ("models:\n  m: {provider: openai, colour: red}\n", "models.m.colour", "Extra inputs"),
        (
            "models:\n  m: {provider: openai}\n  e: {provider: openai, kind: embedding}\n"
            "orchestration: {judge_model: e}\n",
            "<root>",
            "judge_model names 'e', an embedding model",
        ),
        ("models: [unclosed\n", "line 2", "invalid YAML"),
        ("- just\n- a list\n", "<root>", "mapping"),
    ],
)
def test_invalid_config_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.path == str(path)
    assert error.key == key
    assert reason in error.reason
    assert str(path) in str(error) and key in str(error)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")


def test_routing_defaults_are_the_original_design() -> None:
    config = parse_config({"models": {"x": {"provider": "openai"}}})
    assert config.routing.tasks == {
        "code": "gpt-4o",
        "analysis": "gpt-4o",
        "creative": "claude-3-5-sonnet-20241022",
        "translation": "gpt-4o-mini",
        "summarization": "gpt-4o-mini",
        "conversation": "gpt-4o-mini",
    }
    assert config.routing.complexity.code == "gpt-4o"
    assert config.routing.complexity.complex == "claude-3-5-sonnet-20241022"


@pytest.mark.parametrize(
    ("name", "fields", "expected", "source"),
    [
        ("gpt-4o-mini", {"provider": "openai"}, (0.00015, 0.0006), "genai-prices"),
        ("claude-3-5-sonnet-20241022", {"provider": "anthropic"}, (0.003, 0.015), "genai-prices"),
        (
            "gpt-4o-mini",
            {"provider": "openai", "cost_per_1k_input": 1.0, "cost_per_1k_output": 2.0},
            (1.0, 2.0),
            "config",
        ),
        ("my-llama", {"provider": "openai_compatible", "api_base": "http://127.0.0.1:1/v1"}, (None, None), "unknown"),
        ("local", {"provider": "llamacpp"}, (0.0, 0.0), "local"),
    ],
)
def test_prices_from_config_or_table(name: str, fields: dict, expected: tuple, source: str) -> None:
    price = resolve_price(name, ModelConfig(**fields))
    if expected[0] is None:
        assert (price.input_per_1k, price.output_per_1k) == (None, None)
    else:
        assert (price.input_per_1k, price.output_per_1k) == pytest.approx(expected)
    assert price.source == source
    assert price.known == (expected[0] is not None)


def test_unknown_price_gives_no_cost_rather_than_zero() -> None:
    price = resolve_price("mystery", ModelConfig(provider="openai_compatible", api_base="http://127.0.0.1:9/v1"))
    assert price.cost(1000, 1000) is None
    known = resolve_price("x", ModelConfig(provider="openai", cost_per_1k_input=1.0, cost_per_1k_output=3.0))
    assert known.cost(500, 1000) == pytest.approx(0.5 + 3.0)
