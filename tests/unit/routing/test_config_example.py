"""The shipped example of the embedding routers' configuration is valid (with a freshly trained file)."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.routing.context import load_routing_models
from app.routing.embedding import load_embedder
from app.routing.training import train
from app.settings.catalogue import load_config
from tests.unit.routing.learned_data import samples

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "routing-learned.example.yaml"


def test_example_config_loads_with_a_trained_router(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    train(samples(), load_embedder("wordllama-l2-256")).save(tmp_path / "router.npz")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    models = load_routing_models(config.routing, config.source)
    assert models.learned is not None and models.semantic is not None
    assert "legal" in models.semantic.tasks and config.routing.auto == "learned"
    assert config.models["claude-3-5-sonnet-20241022"].router_name == "claude-3-5-sonnet"
