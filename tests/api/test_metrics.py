"""``GET /metrics`` after a scripted set of requests through the app against the fake upstream: exact counts,
tokens, cost per model and histogram observations, read as deltas of two scrapes (metrics are process-wide).
Multi-worker exposition is checked with real separate processes sharing ``PROMETHEUS_MULTIPROC_DIR``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.multiproc import MULTIPROC_ENV, prepare_multiprocess_dir
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, write_config

ROOT = Path(__file__).resolve().parents[2]
PRICE_IN, PRICE_OUT = 0.5, 1.5  # USD per 1k tokens
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Scrape:
    """Two scrapes of ``/metrics``; ``delta(name, **labels)`` is the change between them."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def delta(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def model(upstream_id: str, **extra: object) -> dict[str, object]:
    return {"provider": "openai_compatible", "model": upstream_id, "timeout_s": 10, **extra}


@pytest.fixture
async def client(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    base = upstream.openai_base_url
    prices = {"cost_per_1k_input": PRICE_IN, "cost_per_1k_output": PRICE_OUT}
    config = {
        "models": {
            "obs-alpha": model("alpha-up", api_base=base, **prices),
            "obs-slow": model("slow-up", api_base=base, **prices),
            "obs-down": model("down-up", api_base=base, fallbacks=["obs-alpha"], **prices),
            "obs-flaky": model("flaky-up", api_base=base, **prices),
            "obs-free": model("free-up", api_base=base),  # no price: cost unknown, never a misleading 0
        },
        "orchestration": {"max_retries": 1, "backoff_base_s": 0.0, "backoff_max_s": 0.0},
    }
    async with app_client(write_config(tmp_path, config)) as c:
        yield c


async def complete(client: httpx.AsyncClient, model_name: str, **extra: object) -> httpx.Response:
    return await client.post("/v1/complete", json={"prompt": "hello there", "model": model_name, **extra})


async def test_scripted_requests_give_exact_metrics(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("alpha-up", *[Reply(text="fine thanks", input_tokens=100, output_tokens=20)] * 4)
    upstream.script("slow-up", Reply(text="late", input_tokens=7, output_tokens=3, delay_s=0.3))
    upstream.script("down-up", Reply(status=401))  # not retryable, falls back to obs-alpha
    upstream.script("flaky-up", Reply(status=500), Reply(text="ok", input_tokens=5, output_tokens=1))
    upstream.script("free-up", Reply(text="gratis", input_tokens=9, output_tokens=4))
    before = await scrape(client)

    for _ in range(3):
        assert (await complete(client, "obs-alpha")).status_code == 200
    assert (await complete(client, "obs-slow")).status_code == 200
    fell_back = await complete(client, "obs-down")
    assert fell_back.status_code == 200 and fell_back.json()["model"] == "obs-alpha"
    assert (await complete(client, "obs-flaky")).status_code == 200
    assert (await complete(client, "obs-free")).status_code == 200
    assert (await client.post("/v1/complete", json={"prompt": ""})).status_code == 400
    assert (await complete(client, "no-such-model")).status_code == 404
    assert (await client.get("/health")).status_code == 200  # probes are not counted

    m = Scrape(before, await scrape(client))
    requests = "switchyard_requests_total"
    assert m.delta(requests, route="specific", status_class="2xx", outcome="success") == 7
    assert m.delta(requests, route="none", status_class="4xx", outcome="invalid_request_error") == 1
    assert m.delta(requests, route="none", status_class="4xx", outcome="model_not_found") == 1
    total = sum(v for (name, _), v in m.after.items() if name == requests) - sum(
        v for (name, _), v in m.before.items() if name == requests
    )
    assert total == 9  # /health and the /metrics scrapes are not in it
    assert m.delta("switchyard_request_duration_seconds_count", route="specific") == 7
    assert m.delta("switchyard_requests_in_flight") == 0

    alpha = {"model": "obs-alpha", "provider": "openai_compatible"}
    assert m.delta("switchyard_tokens_total", direction="input", **alpha) == 400  # 3 direct + 1 fallback
    assert m.delta("switchyard_tokens_total", direction="output", **alpha) == 80
    assert m.delta("switchyard_cost_usd_total", **alpha) == pytest.approx(4 * (100 * PRICE_IN + 20 * PRICE_OUT) / 1000)
    assert m.delta("switchyard_upstream_duration_seconds_count", **alpha) == 4

    slow = {"model": "obs-slow", "provider": "openai_compatible"}
    assert m.delta("switchyard_cost_usd_total", **slow) == pytest.approx((7 * PRICE_IN + 3 * PRICE_OUT) / 1000)
    assert m.delta("switchyard_upstream_duration_seconds_count", **slow) == 1
    assert m.delta("switchyard_upstream_duration_seconds_bucket", le="0.25", **slow) == 0  # it took >= 0.3 s
    assert m.delta("switchyard_upstream_duration_seconds_bucket", le="+Inf", **slow) == 1
    assert m.delta("switchyard_upstream_duration_seconds_sum", **slow) >= 0.3

    down = {"model": "obs-down", "provider": "openai_compatible"}
    assert m.delta("switchyard_upstream_errors_total", error_type="upstream_auth_error", **down) == 1
    assert m.delta("switchyard_upstream_duration_seconds_count", **down) == 0  # failed calls: errors only
    assert m.delta("switchyard_tokens_total", direction="input", **down) == 0
    assert m.delta("switchyard_fallbacks_total", from_model="obs-down", to_model="obs-alpha") == 1
    assert m.delta("switchyard_retries_total", **down) == 0

    flaky = {"model": "obs-flaky", "provider": "openai_compatible"}
    assert m.delta("switchyard_upstream_errors_total", error_type="upstream_server_error", **flaky) == 1
    assert m.delta("switchyard_retries_total", **flaky) == 1
    assert m.delta("switchyard_tokens_total", direction="output", **flaky) == 1

    free = {"model": "obs-free", "provider": "openai_compatible"}
    assert m.delta("switchyard_tokens_total", direction="input", **free) == 9
    assert ("switchyard_cost_usd_total", frozenset(free.items())) not in m.after


async def test_streams_record_time_to_first_token_and_usage(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("alpha-up", Reply(text="one two three four", input_tokens=11, output_tokens=4, delay_s=0.2))
    before = await scrape(client)
    body = {"model": "obs-alpha", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        text = "".join([chunk async for chunk in response.aiter_text()])
    assert "data: [DONE]" in text
    m = Scrape(before, await scrape(client))
    alpha = {"model": "obs-alpha", "provider": "openai_compatible"}
    assert m.delta("switchyard_time_to_first_token_seconds_count", **alpha) == 1
    assert m.delta("switchyard_time_to_first_token_seconds_bucket", le="0.1", **alpha) == 0  # >= 0.2 s delay
    assert m.delta("switchyard_tokens_total", direction="input", **alpha) == 11
    assert m.delta("switchyard_tokens_total", direction="output", **alpha) == 4
    assert m.delta("switchyard_cost_usd_total", **alpha) == pytest.approx((11 * PRICE_IN + 4 * PRICE_OUT) / 1000)
    assert m.delta("switchyard_requests_total", route="specific", status_class="2xx", outcome="success") == 1


async def test_labels_are_bounded(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    """A user value (prompt, unknown model name, request id, path) never becomes a label value."""
    marker = "user-supplied-marker-7f3a"
    upstream.script("alpha-up", Reply(text="ok", input_tokens=1, output_tokens=1))
    await client.post("/v1/complete", json={"prompt": marker, "model": "obs-alpha"}, headers={"x-request-id": marker})
    await complete(client, marker)
    await client.get(f"/{marker}")
    text = (await client.get("/metrics")).text
    assert marker not in text


def test_prepare_multiprocess_dir_exports_and_clears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # set, then unset: monkeypatch then restores the variable's absence after prepare_multiprocess_dir sets it
    # (a bare delenv of an unset variable records nothing, and the setting would leak into later tests)
    monkeypatch.setenv(MULTIPROC_ENV, "unused")
    monkeypatch.delenv(MULTIPROC_ENV)
    target = tmp_path / "prom"
    target.mkdir()
    (target / "counter_123.db").write_bytes(b"stale")
    (target / "keep.txt").write_text("not ours")
    assert prepare_multiprocess_dir(target) == target
    assert os.environ[MULTIPROC_ENV] == str(target)
    assert not (target / "counter_123.db").exists() and (target / "keep.txt").exists()
    other = tmp_path / "default-not-used"
    assert prepare_multiprocess_dir(other) == target  # an explicit setting wins over the default
    assert not other.exists()


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from app.observability import metrics
    metrics.record_upstream_call("mp-model", "openai", 0.2, 10, 5, 0.01)
    metrics.IN_FLIGHT.inc()
    if sys.argv[1] == "exit":  # run the app's lifespan as uvicorn does: shutdown drops the live gauges
        from app.main import create_app
        from app.settings.settings import Settings
        app = create_app(Settings(config=sys.argv[2]))
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent = []

        async def receive():
            return incoming.pop(0)

        async def send(message):
            sent.append(message["type"])

        asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"], sent
    """
)
READER = textwrap.dedent(
    """
    import asyncio, httpx
    from app.main import create_app
    from app.settings.settings import Settings

    async def main():
        app = create_app(Settings(config=__import__("sys").argv[1]))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
            print((await client.get("/metrics")).text)

    asyncio.run(main())
    """
)


def test_metrics_are_summed_over_worker_processes(tmp_path: Path) -> None:
    shared = tmp_path / "prom"
    shared.mkdir()
    env = {**os.environ, MULTIPROC_ENV: str(shared), "PYTHONPATH": str(ROOT)}
    config = write_config(tmp_path, {"models": {"mp-model": model("x", api_base="http://127.0.0.1:9/v1")}})
    for mode in ("stay", "exit"):  # two workers; the second one shuts down cleanly
        subprocess.run([sys.executable, "-c", WORKER, mode, str(config)], env=env, check=True, timeout=60, cwd=ROOT)
    out = subprocess.run(
        [sys.executable, "-c", READER, str(config)], env=env, check=True, timeout=60, cwd=ROOT, capture_output=True
    )
    samples = parse(out.stdout.decode())
    labels = {"model": "mp-model", "provider": "openai"}
    assert value(samples, "switchyard_tokens_total", direction="input", **labels) == 20
    assert value(samples, "switchyard_tokens_total", direction="output", **labels) == 10
    assert value(samples, "switchyard_cost_usd_total", **labels) == pytest.approx(0.02)
    assert value(samples, "switchyard_upstream_duration_seconds_count", **labels) == 2
    assert value(samples, "switchyard_upstream_duration_seconds_bucket", le="0.25", **labels) == 2
    assert value(samples, "switchyard_upstream_duration_seconds_bucket", le="0.1", **labels) == 0
    assert value(samples, "switchyard_requests_in_flight") == 1  # the exited worker's gauge is gone
    assert json.dumps(sorted(p.name for p in shared.iterdir()))  # the workers really wrote files
    assert any(shared.glob("counter_*.db"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_switchyard_serve_with_two_workers_sums_metrics(upstream: FakeUpstream, tmp_path: Path) -> None:
    """A real ``switchyard serve --workers 2``: every scrape, whichever worker answers it, shows all requests."""
    upstream.default = Reply(text="served", input_tokens=3, output_tokens=2)
    base = upstream.openai_base_url
    config = write_config(
        tmp_path, {"models": {"mw-model": model("mw-up", api_base=base, cost_per_1k_input=1.0, cost_per_1k_output=0.0)}}
    )
    port = _free_port()
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path / "prom"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port), "--config", str(config)]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        for _ in range(10):  # a new connection each time, so that both workers take some
            response = httpx.post(f"{url}/v1/complete", json={"prompt": "hi", "model": "mw-model"}, timeout=30)
            assert response.status_code == 200, response.text
        labels = {"model": "mw-model", "provider": "openai_compatible"}
        for _ in range(4):
            samples = parse(httpx.get(f"{url}/metrics", timeout=10).text)
            assert (
                value(samples, "switchyard_requests_total", route="specific", status_class="2xx", outcome="success")
                == 10
            )
            assert value(samples, "switchyard_tokens_total", direction="input", **labels) == 30
            assert value(samples, "switchyard_cost_usd_total", **labels) == pytest.approx(0.03)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        if server.stderr:
            server.stderr.close()
