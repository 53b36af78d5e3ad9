"""The issue-17 section of the bench report: its table, its ratios and its targets met or missed, from a saved
run's data (no servers)."""

from __future__ import annotations

from typing import Any

from bench.report import render


def _target(name: str, rps: float, cpu: float, stream_cpu: float, rss: float, p50: float, p99: float) -> dict[str, Any]:
    return {
        "name": name,
        "label": name,
        "max": {"achieved_rps": rps, "ok": 100},
        "cpu_ms_per_request": cpu,
        "cpu_ms_per_stream": stream_cpu,
        "peak_rss_mb": rss,
        "open": {
            "500": {
                "ok": 100,
                "sent": 100,
                "error_count": 0,
                "dropped": 0,
                "latency_ms": {"p50": 50.0 + p50, "p99": 50.0 + p99},
            }
        },
    }


def _data(**switchyard: Any) -> dict[str, Any]:
    chat = _target("switchyard-chat", 1800.0, 0.5, 1.2, 110.0, 0.8, 1.2) | switchyard
    return {
        "meta": {
            "started": "t0",
            "finished": "t1",
            "commit": "abc",
            "python": "3",
            "cpus": 2,
            "args": {"rates": [500], "delay_ms": 50.0, "stream_rate": 100.0},
        },
        "targets": {
            "upstream": _target("upstream", 50000.0, 0.01, 0.1, 26.0, 0.0, 0.0),
            "floor": _target("floor", 7000.0, 0.14, 1.4, 41.0, 0.2, 1.0),
            "portkey": _target("portkey", 800.0, 1.26, 5.0, 213.0, 3.9, 69.0),
            "switchyard-chat": chat,
        },
    }


def _result(text: str, target: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith(f"| {target}"))
    return line.split("|")[2].strip()


def test_targets_met() -> None:
    data = _data(workers1_shared={"achieved_rps": 1000.0}, workers2={"achieved_rps": 1900.0})
    text = render(data)
    assert "## Per-core efficiency (issue #17)" in text
    assert _result(text, "max throughput per core >= 2x Portkey's") == "PASS"  # 1800 / 800
    assert _result(text, "max throughput per core >= 0.25x the bare proxy's") == "PASS"  # 1800 / 7000
    assert _result(text, "added p50 @ 500 req/s within 1 ms") == "PASS"  # 0.8 vs 0.2
    assert _result(text, "added p99 @ 500 req/s within 1.5x") == "PASS"  # 1.2 vs 1.0
    assert _result(text, "p99 @ 500 req/s within 1.5x the bare proxy's (whole") == "PASS"  # 51.2 vs 51.0
    assert _result(text, "CPU per stream within 2x") == "PASS"  # 1.2 vs 1.4
    assert _result(text, "RSS under 120 MB") == "PASS"
    assert _result(text, "2 workers on 2 cores") == "PASS"  # 1.9x
    assert "| Switchyard / Portkey | 2.25x | 0.40x |" in text


def test_targets_missed() -> None:
    data = _data(
        max={"achieved_rps": 1500.0, "ok": 100},
        cpu_ms_per_stream=3.0,
        peak_rss_mb=125.0,
        workers1_shared={"achieved_rps": 1000.0},
        workers2={"achieved_rps": 1500.0},
    )
    data["targets"]["switchyard-chat"]["open"]["500"]["latency_ms"] = {"p50": 52.0, "p99": 52.0}
    text = render(data)
    for target in (
        "max throughput per core >= 2x Portkey's",  # 1.875x
        "added p50 @ 500 req/s within 1 ms",  # 2.0 vs 0.2
        "added p99 @ 500 req/s within 1.5x",  # 2.0 vs 1.0
        "CPU per stream within 2x",  # 3.0 vs 1.4
        "RSS under 120 MB",
        "2 workers on 2 cores",  # 1.5x
    ):
        assert _result(text, target) == "MISS", target
    assert _result(text, "max throughput per core >= 0.25x the bare proxy's") == "MISS"  # 1500 / 7000 = 0.21
    assert _result(text, "p99 @ 500 req/s within 1.5x the bare proxy's (whole") == "PASS"  # 52 vs 51: 76.5 ms
    data["targets"]["switchyard-chat"]["open"]["500"]["latency_ms"] = {"p50": 52.0, "p99": 80.0}
    assert _result(render(data), "p99 @ 500 req/s within 1.5x the bare proxy's (whole") == "MISS"  # 80 > 76.5


def test_long_streams_figure() -> None:
    data = _data()
    data["targets"]["switchyard-chat"]["streams"] = {
        "requested": 10000,
        "streams": 9500,
        "max_open": 9500,
        "stream_seconds": 30.0,
        "ok": 9500,
        "error_count": 0,
        "fd_limit": 20000,
        "rss_before_mb": 126.0,
        "rss_peak_mb": 668.0,
        "rss_per_stream_kb": 58.5,
        "probe": {"latency_ms": {"p50": 6.0, "p99": 839.0}, "error_count": 0, "sent": 560},
    }
    text = render(data)
    assert "| switchyard-chat | 10,000 / 9,500 (fd limit 20000) | 30 | 9,500 | 0 | 126.0 -> 668.0 | 58.5 |" in text
