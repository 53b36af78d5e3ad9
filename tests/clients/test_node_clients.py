"""Node clients against a real ``switchyard serve``, to every provider kind: the official ``openai`` npm
package and the Vercel AI SDK (``ai`` + ``@ai-sdk/openai``, ``createOpenAI({baseURL}).chat(model)``).

One ``node tests/clients/node/driver.mjs`` process serves the whole session: each test scripts the fake
upstream, asks the driver for one scenario (a JSON line on its stdin) and checks its answer and what the
vendor received. The packages (pinned in tests/clients/node/package.json and its lock file) are installed
with ``npm ci`` on first use; without node/npm 20+, or when the install fails (no registry), these tests are
skipped with the reason.
"""

from __future__ import annotations

import itertools
import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    REASONING,
    WEATHER_JSON,
    check_image,
    check_json_schema,
    check_reasoning,
    check_stream,
    check_tool,
    check_tool_result,
    check_vendor,
    json_reply,
    last,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

NODE_DIR = Path(__file__).parent / "node"
INSTALL_TIMEOUT_S = 300
CALL_TIMEOUT_S = 60

pytestmark = pytest.mark.parametrize("model", MODELS)


class NodeDriver:
    """The driver process: one request line in, one ``@@ {json}`` answer line out."""

    def __init__(self, proc: subprocess.Popen[str], stderr_path: Path) -> None:
        self.proc, self.stderr_path = proc, stderr_path
        self._ids = itertools.count()
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="node-driver-stdout").start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                self._answers.put(line[3:])
        self._answers.put(None)

    def call(self, client: str, scenario: str, model: str, base_url: str) -> dict[str, Any]:
        ident = next(self._ids)
        request = {"id": ident, "client": client, "scenario": scenario, "model": model, "baseURL": base_url}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        while True:
            try:
                line = self._answers.get(timeout=CALL_TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"node driver: no answer in {CALL_TIMEOUT_S}s to {request}") from None
            if line is None:
                raise AssertionError(f"node driver exited: {self.stderr_path.read_text()[-3000:]}")
            answer: dict[str, Any] = json.loads(line)
            if answer["id"] == ident:
                return answer


def _install() -> str | None:
    """Install the pinned packages if needed; the reason to skip, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not installed"
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 20:
        return f"node {version} is older than 20"
    lock = NODE_DIR / "package-lock.json"
    marker = NODE_DIR / "node_modules" / ".package-lock.json"  # written by npm at the end of an install
    sources = [NODE_DIR / "package.json", *([lock] if lock.exists() else [])]
    if marker.exists() and marker.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return None
    # ``npm ci``: exactly the versions of the lock file, which it never rewrites
    command = ["npm", "ci" if lock.exists() else "install", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        done = subprocess.run(
            command, cwd=NODE_DIR, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"npm install took more than {INSTALL_TIMEOUT_S}s (no registry?)"
    if done.returncode != 0:
        return f"npm install failed (no registry?): {(done.stderr or done.stdout)[-500:]}"
    return None


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeDriver]:
    reason = _install()
    if reason is not None:
        pytest.skip(reason)
    stderr_path = tmp_path_factory.mktemp("node") / "driver.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            ["node", "driver.mjs"],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
        )
    try:
        yield NodeDriver(proc, stderr_path)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the driver's read loop ends: it exits
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["ok"], answer["error"]
    result: dict[str, Any] = answer["result"]
    return result


# --- the official openai npm package ------------------------------------------------------------------


def test_openai_chat(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees.", input_tokens=7, output_tokens=3))
    result = ok(node.call("openai", "chat", model, base_url))
    assert (result["content"], result["finish"]) == ("Sunny, 21 degrees.", "stop")
    assert (result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"]) == (7, 3)
    (request,) = one(upstream)
    check_vendor(request, model)


def test_openai_stream(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today.", input_tokens=7, output_tokens=4))
    result = ok(node.call("openai", "stream", model, base_url))
    assert (result["text"], result["finish"]) == ("Sunny and warm today.", ["stop"])
    assert (result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"]) == (7, 4)
    check_stream(last(upstream))


def test_openai_parse_with_zod(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, json_reply())
    assert ok(node.call("openai", "parse", model, base_url))["parsed"] == WEATHER_JSON
    check_json_schema(last(upstream))


def test_openai_strict_tool_loop(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), Reply(text="It is 21 degrees in Paris."))
    result = ok(node.call("openai", "tool_loop", model, base_url))
    assert result["calls"] == [["get_weather", {"city": "Paris"}]]
    assert (result["finish"], result["final"]) == ("tool_calls", "It is 21 degrees in Paris.")
    first, second = one(upstream, 2)
    check_tool(first, "get_weather", strict=True, parallel=False)
    check_tool_result(second, "get_weather", "celsius")


def test_openai_streamed_tool_calls(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]))
    result = ok(node.call("openai", "stream_tools", model, base_url))
    assert result == {"names": ["get_weather"], "args": {"city": "Paris"}, "finish": ["tool_calls"]}
    check_stream(last(upstream))


def test_openai_image(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    assert ok(node.call("openai", "image", model, base_url))["content"] == "A single pixel."
    check_image(last(upstream))


def test_openai_reasoning_effort(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4"))
    answer = node.call("openai", "reasoning", model, base_url)
    if model not in REASONING:
        assert not answer["ok"] and answer["error"]["status"] == 400, answer
        assert "reasoning_effort" in answer["error"]["message"]
        assert upstream.requests == []
        return
    assert ok(answer)["content"] == "4"
    check_reasoning(last(upstream), "low")


# --- the Vercel AI SDK ----------------------------------------------------------------------------------


def test_ai_generate_text(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees.", input_tokens=7, output_tokens=3))
    result = ok(node.call("ai", "generateText", model, base_url))
    assert (result["text"], result["finish"]) == ("Sunny, 21 degrees.", "stop")
    assert (result["usage"]["inputTokens"], result["usage"]["outputTokens"]) == (7, 3)
    check_vendor(last(upstream), model)


def test_ai_stream_text(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today.", input_tokens=7, output_tokens=4))
    result = ok(node.call("ai", "streamText", model, base_url))
    assert (result["text"], result["finish"]) == ("Sunny and warm today.", "stop")
    assert (result["usage"]["inputTokens"], result["usage"]["outputTokens"]) == (7, 4)
    check_stream(last(upstream))


@pytest.mark.parametrize("scenario", ["generateObject", "outputObject"])
def test_ai_structured_output(
    node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str, scenario: str
) -> None:
    script(upstream, model, json_reply())
    result = ok(node.call("ai", scenario, model, base_url))
    assert result["object" if scenario == "generateObject" else "output"] == WEATHER_JSON
    check_json_schema(last(upstream))


def test_ai_tool(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), Reply(text="It is 21 degrees in Paris."))
    result = ok(node.call("ai", "tool", model, base_url))
    assert result == {"text": "It is 21 degrees in Paris.", "calls": [["get_weather", {"city": "Paris"}]], "steps": 2}
    first, second = one(upstream, 2)
    check_tool(first, "get_weather")
    check_tool_result(second, "get_weather", "celsius")


def test_ai_streamed_tool(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), Reply(text="It is 21 degrees in Paris."))
    result = ok(node.call("ai", "streamTool", model, base_url))
    assert result == {"text": "It is 21 degrees in Paris.", "calls": [["get_weather", {"city": "Paris"}]]}
    first, second = one(upstream, 2)
    check_stream(first)
    check_tool_result(second, "get_weather", "celsius")


def test_ai_image(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    assert ok(node.call("ai", "image", model, base_url))["text"] == "A single pixel."
    check_image(last(upstream))


def test_ai_reasoning_effort(node: NodeDriver, base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4"))
    answer = node.call("ai", "reasoning", model, base_url)
    if model not in REASONING:
        assert not answer["ok"] and answer["error"]["status"] == 400, answer
        assert "reasoning_effort" in answer["error"]["message"]
        assert upstream.requests == []
        return
    assert ok(answer)["text"] == "4"
    check_reasoning(last(upstream), "low")
