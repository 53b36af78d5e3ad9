"""``gc.freeze()`` after startup: only when asked (``switchyard serve`` asks; in-process apps do not)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.main import create_app
from app.settings.settings import Settings

CONFIG = """\
models:
  local-compatible:
    provider: openai_compatible
    api_base: http://127.0.0.1:9/v1
"""


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("freeze", [True, False])
async def test_lifespan_freezes_only_when_asked(tmp_path: Path, freeze: bool) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    app = create_app(Settings(config=path, gc_freeze=freeze))
    async with app.router.lifespan_context(app):
        assert (gc.get_freeze_count() > 0) is freeze


def test_serve_turns_it_on_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from app import cli

    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    seen: dict[str, object] = {}

    def fake_run(app: object, **kwargs: object) -> None:
        seen["gc_freeze"] = app.state.settings.gc_freeze  # type: ignore[attr-defined]

    for name in ("SWITCHYARD_GC_FREEZE", "SWITCHYARD_CONFIG"):  # serve writes both: restore them afterwards
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert cli.main(["serve", "--config", str(path)]) == 0
    assert seen["gc_freeze"] is True
