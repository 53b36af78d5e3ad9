"""The ``switchyard`` command: check-config, models, and a real ``switchyard serve`` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.cli import main
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, fake_models, write_config

REPO = Path(__file__).resolve().parents[2]


def test_check_config_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(REPO / "config" / "gateway.yaml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_config_rejects_an_invalid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {provider: openai, timeout_s: fast}\n")
    assert main(["check-config", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "models.m.timeout_s" in err


def test_models_command_shows_usability(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-visible-nowhere-123456")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = write_config(tmp_path, {"models": fake_models("http://127.0.0.1:9")})
    assert main(["models", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert lines["gpt-4o-mini"].rstrip().endswith("yes")
    assert "ANTHROPIC_API_KEY unset" in lines["claude-3-5-sonnet-20241022"]
    assert "sk-visible-nowhere" not in out


def test_serve_refuses_an_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "invalid configuration" in result.stderr and str(bad) in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_serve_process_answers(upstream: FakeUpstream, tmp_path: Path) -> None:
    path = write_config(tmp_path, {"models": fake_models(upstream.base_url)})
    port = _free_port()
    env = {**os.environ, **TEST_KEYS, "SWITCHYARD_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--config", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "switchyard serve did not start"
            time.sleep(0.2)
        upstream.script("gemini-2.0-flash", Reply(text="served for real"))
        response = httpx.post(
            f"{base}/v1/complete",
            json={"prompt": "hi", "routing": "specific", "model": "gemini-2.0-flash"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["content"] == "served for real"
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    for key in TEST_KEYS.values():
        assert key not in output
