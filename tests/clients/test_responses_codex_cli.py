"""The Codex CLI itself (``codex exec``) against a real ``switchyard serve``, its model an Anthropic-backed and
a Gemini-backed catalogue entry (``~/.codex/config.toml`` as the README shows it): a turn that runs a shell
command through Codex's ``exec_command`` tool and answers with what it printed. Codex is not a Python
package: the test runs when ``codex`` is on PATH or ``SWITCHYARD_TEST_CODEX`` names the binary
(``npm install @openai/codex``), and is skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.gateway_process import GatewayProcess
from tests.clients.responses_support import carries, generation_requests, responses_gateway
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

CODEX = os.environ.get("SWITCHYARD_TEST_CODEX") or shutil.which("codex")
pytestmark = pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not installed (npm install @openai/codex)")
MARK = "codex-was-here"


@pytest.fixture(scope="module")
def process(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with responses_gateway(fake_upstream, tmp_path_factory.mktemp("codex")) as running:
        yield running


def codex_home(folder: Path, base_url: str, model: str) -> Path:
    home = folder / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "switchyard"\n'
        'web_search = "disabled"\n'
        "[model_providers.switchyard]\n"
        'name = "Switchyard"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "SWITCHYARD_API_KEY"\n'
    )
    return home


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-20241022", "gemini-2.0-flash"])
def test_codex_exec_runs_a_tool_through_the_gateway(
    process: GatewayProcess, upstream: FakeUpstream, tmp_path: Path, model: str
) -> None:
    assert CODEX is not None
    command = {"name": "exec_command", "arguments": {"cmd": f"echo {MARK}"}}
    upstream.script(
        model, Reply(reasoning="I should run it.", tool_calls=[command]), Reply(text="It printed the mark.")
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "CODEX_HOME": str(codex_home(tmp_path, process.openai_base_url, model)),
        "SWITCHYARD_API_KEY": "sk-any",
    }
    done = subprocess.run(
        [CODEX, "exec", "--skip-git-repo-check", "Run the command."],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "It printed the mark." in done.stdout
    first, second = generation_requests(upstream)
    assert first.stream and second.stream
    assert not carries(first, MARK)
    assert json.dumps(second.body).count(MARK) >= 2  # the call's arguments, and what the command printed
