"""Serving without a master key (fine on loopback, refused elsewhere unless SWITCHYARD_AUTH=disabled), the
master key's sources, and ``switchyard keys`` on the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.governance.master import is_loopback_host, master_key, startup_problem
from app.settings.settings import Settings
from tests.governance.support import MASTER
from tests.support import fake_models, write_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("gateway.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_the_no_master_key_rule(tmp_path: Path) -> None:
    assert startup_problem(Settings(host="127.0.0.1")) is None
    problem = startup_problem(Settings(host="0.0.0.0"))
    assert problem is not None
    assert "SWITCHYARD_MASTER_KEY" in problem and "SWITCHYARD_AUTH=disabled" in problem
    assert startup_problem(Settings(host="0.0.0.0", auth="disabled")) is None
    assert startup_problem(Settings(host="0.0.0.0", master_key=MASTER)) is None
    key_file = tmp_path / "key"
    key_file.write_text(f"  {MASTER}  \nignored\n")
    assert master_key(Settings(master_key_file=key_file)) == MASTER
    missing = startup_problem(Settings(host="0.0.0.0", master_key_file=tmp_path / "nope"))
    assert missing is not None and "SWITCHYARD_MASTER_KEY_FILE" in missing
    (tmp_path / "empty").write_text("\n")
    assert "empty" in (startup_problem(Settings(host="127.0.0.1", master_key_file=tmp_path / "empty")) or "")


def test_serve_refuses_a_public_host_without_a_master_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"models": fake_models("http://127.0.0.1:9")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", "9", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 1
    assert "SWITCHYARD_MASTER_KEY" in result.stderr and "SWITCHYARD_AUTH=disabled" in result.stderr


def test_keys_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"models": fake_models("http://127.0.0.1:9")})
    monkeypatch.setenv("SWITCHYARD_STATE_PATH", str(tmp_path / "state.db"))
    monkeypatch.delenv("SWITCHYARD_REDIS_URL", raising=False)
    cfg = ["--config", str(config)]

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, *cfg])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("keys", "create", "--name", "ci", "--models", "gpt-4o-mini,gpt-4o", "--rpm", "5")
    created = json.loads(out)
    assert code == 0 and created["key"].startswith("sk-sy-") and created["models"] == ["gpt-4o-mini", "gpt-4o"]
    key_id, secret = created["id"], created["key"]
    code, out, _ = run("keys", "list")
    assert code == 0 and [k["id"] for k in json.loads(out)] == [key_id] and secret not in out
    code, out, _ = run("keys", "update", key_id, "--rpm", "none", "--budget-usd", "2.5", "--budget-period", "1d")
    updated = json.loads(out)
    assert code == 0 and updated["rpm"] is None and updated["budget_usd"] == 2.5 and updated["budget_period"] == "1d"
    code, out, _ = run("keys", "show", key_id)
    assert code == 0 and json.loads(out)["spend_usd"] == 0 and secret not in out
    code, out, _ = run("keys", "revoke", key_id)
    assert code == 0 and json.loads(out)["revoked"] is True
    assert run("keys", "show", "key_nope")[0] == 1
    code, _, err = run("keys", "create", "--name", "x", "--models", "no-such-model")
    assert code == 1 and "no-such-model" in err
    assert run("keys", "create", "--name", "x", "--budget-period", "2d")[0] == 2
    assert (tmp_path / "state.db").exists()
