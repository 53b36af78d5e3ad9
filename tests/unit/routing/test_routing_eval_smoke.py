"""bench/routing_eval.py runs end to end on a tiny subset of the shared evaluation data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("SWITCHYARD_EVAL_DATA", REPO.parent / "shared" / "evals" / "dev"))

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"evaluation data not found at {DATA} (set SWITCHYARD_EVAL_DATA)"
)


@needs_data
def test_script_prints_and_writes_the_tables(tmp_path: Path) -> None:
    out = tmp_path / "routing_eval.md"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "routing_eval.py"),
            "--data",
            str(DATA),
            "--limit",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,  # embeds the examples with both models and trains 8 routers; the CI box may be shared
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = out.read_text()
    assert written.strip() == result.stdout.strip()
    for needle in (
        "| MT-Bench | 32 |",
        "Arena-Hard v2.0",
        "always-strongest",
        "route-by-length",
        "complexity",
        "cost: 11",
        "### Semantic task detection",
        "| keywords first, wordllama-l2-256 | MT-Bench | 32 |",
        "| keywords first, use-multilingual-v3 | Arena-Hard v2.0 (non-Latin-script prompts only) |",
        "### Learned quality-cost router on RouterBench",
        "| trained without mbpp, scored on mbpp | wordllama-l2-256 |",
    ):
        assert needle in written
    assert "(subset: at most 4 prompts" in written


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "routing_eval.py"),
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "evaluation data not found" in result.stderr


def test_latency_bench_reports_every_model(tmp_path: Path) -> None:
    out = tmp_path / "latency.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "routing_latency.py"), "--runs", "5", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = out.read_text()
    for needle in (
        "| wordllama-l2-256 | semantic task routing (no keyword: the examples decide) |",
        "| use-multilingual-v3 | learned routing |",
        "| wordllama-l2-256 loaded | explicit model (no embedding) |",
        "| none | complexity routing |",
    ):
        assert needle in written
