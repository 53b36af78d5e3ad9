"""The benchmark scripts start and produce a well-formed result on a tiny run (no timing assertions).

LiteLLM and the 2-worker runs are left out here (LiteLLM lives in its own venv that a full
``python -m bench.run`` installs; CI never benchmarks).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadgen import percentile, summarize
from bench.report import render

ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_are_nearest_rank() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentile(values, 50) == 0.05
    assert percentile(values, 99) == 0.099
    assert percentile([], 50) is None
    summary = summarize(values)
    assert summary["p50"] == 50.0 and summary["p99"] == 99.0 and summary["max"] == 100.0


def test_upstream_and_loadgen_directly(tmp_path: Path) -> None:
    from bench import procs

    port = procs.free_port()
    upstream = procs.start(
        "upstream",
        [sys.executable, str(ROOT / "bench" / "upstream.py"), "--port", str(port)],
        cpus=None,
        env={},
        log_dir=tmp_path,
    )
    try:
        body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
        procs.wait_ready(upstream, f"http://127.0.0.1:{port}/v1/chat/completions", body, timeout=30)
        status, data = procs.post(f"http://127.0.0.1:{port}/v1/chat/completions", body)
        assert status == 200 and data.startswith(b"data: ") and data.rstrip().endswith(b"data: [DONE]")
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                "--url",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                "--body",
                body.decode(),
                "--mode",
                "open",
                "--rate",
                "50",
                "--duration",
                "0.5",
                "--stream",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        result = json.loads(out.stdout)
        assert result["ok"] == result["sent"] == 25
        assert result["error_count"] == 0 and result["dropped"] == 0
        assert result["ttft_ms"]["p50"] is not None and result["ttft_ms"]["p50"] <= result["latency_ms"]["p50"]
    finally:
        upstream.stop()


def test_tiny_benchmark_run(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "bench.run",
        "--targets",
        "upstream,floor,switchyard,switchyard-keys",
        "--no-scaling",
        "--warmup-seconds",
        "0.3",
        "--max-seconds",
        "0.5",
        "--rates",
        "50",
        "--rate-seconds",
        "0.5",
        "--stream-rate",
        "20",
        "--ttft-seconds",
        "0.5",
        "--soak-requests",
        "200",
        "--rounds",
        "1",
        "--round-seconds",
        "0.3",
        "--rounds-targets",
        "floor,switchyard,switchyard-keys",
        "--out",
        str(tmp_path),
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=170, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    targets = data["targets"]
    assert set(targets) == {"upstream", "floor", "switchyard", "switchyard-keys"}
    for name, result in targets.items():
        assert "error" not in result, (name, result.get("error"))
        assert result["max"]["ok"] > 0 and result["cpu_ms_per_request"] > 0
        assert result["open"]["50"]["ok"] > 0
        assert result["soak"]["requests"] == 200
        assert result["peak_rss_mb"] > 0
    assert targets["switchyard"]["stream"] is not None, "Switchyard answered no streaming request"
    assert targets["switchyard-keys"]["max"]["error_count"] == 0  # the virtual key's requests were all let in
    rounds = data["meta"]["rounds"]
    assert set(rounds) == {"floor", "switchyard", "switchyard-keys"}
    assert all(len(runs) == 1 and runs[0]["rps"] > 0 and runs[0]["cpu_ms"] > 0 for runs in rounds.values())
    text = (tmp_path / "latest.md").read_text()
    assert "| max throughput, 0 ms delay (req/s) |" in text and "## Targets (issue #8)" in text
    assert "Max throughput again, interleaved" in text
    assert text == render(data)


def test_report_of_interleaved_rounds() -> None:
    """The rounds' ratios are taken within each round, and their median is checked against the targets."""
    meta = {"started": "t0", "finished": "t1", "commit": "abc", "python": "3", "cpus": 2}
    meta |= {"args": {"rates": [500], "delay_ms": 50.0, "stream_rate": 100.0}}
    meta["rounds"] = {
        "floor": [{"rps": 8000.0, "cpu_ms": 0.12}, {"rps": 4000.0, "cpu_ms": 0.24}, {"rps": 6000.0, "cpu_ms": 0.16}],
        "portkey": [{"rps": 1000.0, "cpu_ms": 1.0}, {"rps": 500.0, "cpu_ms": 2.0}, {"rps": 900.0, "cpu_ms": 1.1}],
        "switchyard-chat": [
            {"rps": 2400.0, "cpu_ms": 0.4},
            {"rps": 800.0, "cpu_ms": 1.2},
            {"rps": 1800.0, "cpu_ms": 0.5},
        ],
    }
    chat = {"name": "switchyard-chat", "label": "Switchyard chat", "max": {"achieved_rps": 2000.0}}
    data = {"meta": meta, "targets": {"switchyard-chat": chat}}
    text = render(data)
    # per round: 2400/1000, 800/500, 1800/900 -> 2.4, 1.6, 2.0 (median 2.0); 0.3, 0.2, 0.3 of the floor
    assert "| max throughput per core >= 2x Portkey's, interleaved rounds (median) | PASS | 2.00x" in text
    assert "| max throughput per core >= 0.25x the bare proxy's, interleaved rounds (median) | PASS | 0.30x" in text
    assert "| Switchyard chat | 2,400 (0.400) | 800 (1.200) | 1,800 (0.500) | 1,800 | 0.30x | 2.00x |" in text


@pytest.mark.parametrize("missing", ["litellm", "floor"])
def test_report_handles_missing_targets(missing: str) -> None:
    data = {
        "meta": {
            "started": "t0",
            "finished": "t1",
            "commit": "abc",
            "python": "3",
            "cpus": 2,
            "args": {"rates": [100], "delay_ms": 50.0},
        },
        "targets": {
            "upstream": {"name": "upstream", "label": "upstream direct", "max": {"achieved_rps": 100.0}},
            missing: {"name": missing, "label": missing, "error": "did not start"},
        },
    }
    text = render(data)
    assert "did not start" in text and "| metric |" in text
