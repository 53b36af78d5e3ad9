"""``python -m bench.run --baseline-ref REF`` without starting servers: the worktree's creation and removal (in
a scratch repository, never this one), the command and environment of a baseline server, the check that it
imports the baseline's ``app``, the target selection and the before/after table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import baseline
from bench.report import render
from bench.run import parse_args
from bench.targets import ROOT, build_targets

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch repository whose committed ``app`` says "before" and whose working tree says "after"."""
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "app" / "__init__.py").write_text('SIDE = "before"\n')
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "before")
    (repo / "app" / "__init__.py").write_text('SIDE = "after"\n')
    return repo


def _worktrees(repo: Path) -> list[str]:
    return [line for line in _git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_commands_and_environment_of_a_baseline_server(tmp_path: Path) -> None:
    src = tmp_path / "baseline-src"
    assert baseline.worktree_add_cmd(ROOT, src, "main") == [
        "git",
        "-C",
        str(ROOT),
        "worktree",
        "add",
        "--detach",
        str(src),
        "main",
    ]
    assert baseline.worktree_remove_cmd(ROOT, src) == [
        "git",
        "-C",
        str(ROOT),
        "worktree",
        "remove",
        "--force",
        str(src),
    ]
    assert baseline.worktree_dir(tmp_path) == src

    config = tmp_path / "switchyard-bench.yaml"
    cmd, env, cwd = baseline.switchyard_launch(src, config, 8123, 2)
    assert cmd == [
        *(sys.executable, "-m", "app.cli", "serve", "--config", str(config)),
        *("--host", "127.0.0.1", "--port", "8123", "--workers", "2"),
    ]
    # python -m puts the working directory first on sys.path: both must be the baseline checkout
    assert env == {"SWITCHYARD_LOG_LEVEL": "info", "PYTHONPATH": str(src)} and cwd == src
    # the working tree's server starts the same way, from the repository root
    assert baseline.switchyard_launch(ROOT, config, 8123, 2) == (cmd, {**env, "PYTHONPATH": str(ROOT)}, ROOT)


def test_worktree_is_created_at_the_ref_and_removed(repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    head = _git(repo, "rev-parse", "--short", "HEAD").strip()
    with baseline.worktree(repo, work, "HEAD") as checkout:
        assert checkout is not None
        assert checkout.src == work / "baseline-src" and checkout.commit == head
        assert checkout.label == f"Switchyard @{head}"
        assert (checkout.src / "app" / "__init__.py").read_text() == 'SIDE = "before"\n'
        assert len(_worktrees(repo)) == 2
        found = baseline.check_app_source(checkout.src, baseline.switchyard_env(checkout.src), checkout.src)
        assert found == (checkout.src / "app" / "__init__.py").resolve()
    assert not (work / "baseline-src").exists()
    assert len(_worktrees(repo)) == 1
    assert (repo / "app" / "__init__.py").read_text() == 'SIDE = "after"\n'  # the working tree is untouched


def test_worktree_is_removed_when_the_run_fails(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), baseline.worktree(repo, tmp_path, "HEAD"):
        assert (tmp_path / "baseline-src").exists()
        raise KeyboardInterrupt
    assert not (tmp_path / "baseline-src").exists() and len(_worktrees(repo)) == 1


def test_unknown_ref_fails_clearly_and_leaves_nothing(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(baseline.BaselineError, match="no-such-ref"), baseline.worktree(repo, tmp_path, "no-such-ref"):
        pass
    assert not (tmp_path / "baseline-src").exists() and len(_worktrees(repo)) == 1


def test_no_ref_no_worktree(tmp_path: Path) -> None:
    with baseline.worktree(ROOT, tmp_path, None) as checkout:
        assert checkout is None
    assert not (tmp_path / "baseline-src").exists()


def test_import_check_fails_when_another_app_would_be_imported(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-app-here"
    empty.mkdir()
    # PYTHONPATH names a checkout without app, the working directory has one: that one would be imported
    with pytest.raises(baseline.BaselineError, match="would import app from"):
        baseline.check_app_source(empty, baseline.switchyard_env(empty), repo)


def test_baseline_targets_follow_their_counterparts(tmp_path: Path) -> None:
    a = parse_args(["--targets", "upstream,switchyard,switchyard-chat,litellm", "--baseline-ref", "main"])
    assert a.targets == [
        "upstream",
        "switchyard",
        "switchyard-baseline",
        "switchyard-chat",
        "switchyard-baseline-chat",
        "litellm",
    ]
    assert parse_args(["--targets", "switchyard-chat", "--baseline-ref", "HEAD"]).targets == [
        "switchyard-chat",
        "switchyard-baseline-chat",
    ]
    assert "switchyard-baseline" not in parse_args(["--baseline-ref", "main"]).scaling_targets
    assert parse_args([]).baseline_ref is None and "switchyard-baseline" not in parse_args([]).targets
    with pytest.raises(SystemExit):
        parse_args(["--targets", "switchyard-baseline"])  # a baseline needs a ref
    with pytest.raises(SystemExit):
        parse_args(["--targets", "switchyard-typo"])

    checkout = baseline.Baseline("main", "abc1234", tmp_path / "baseline-src")
    targets = build_targets("http://127.0.0.1:9", tmp_path, checkout)
    assert targets["switchyard-baseline"].label == "Switchyard @abc1234"
    for after, before in (("switchyard", "switchyard-baseline"), ("switchyard-chat", "switchyard-baseline-chat")):
        assert targets[before].json_request == targets[after].json_request
        assert targets[before].stream_candidates == targets[after].stream_candidates
    assert targets["switchyard-chat"].json_request.path == "/v1/chat/completions"
    assert b'"model": "gpt-4o-mini"' in targets["switchyard-chat"].json_request.body
    assert "switchyard-baseline" not in build_targets("http://127.0.0.1:9", tmp_path)


def test_report_before_after_table() -> None:
    def side(name: str, rps: float, cpu: float, stream_cpu: float, rss: float) -> dict:
        return {
            "name": name,
            "label": name,
            "note": "POST /v1/complete with routing auto",
            "max": {"achieved_rps": rps},
            "cpu_ms_per_request": cpu,
            "cpu_ms_per_stream": stream_cpu,
            "peak_rss_mb": rss,
        }

    data = {
        "meta": {
            "started": "t0",
            "commit": "def5678",
            "dirty": True,
            "python": "3",
            "cpus": 2,
            "baseline": {"ref": "main", "commit": "abc1234"},
            "args": {"rates": [], "delay_ms": 50.0},
        },
        "targets": {
            "switchyard": side("switchyard", 1500.0, 0.5, 2.0, 60.0),
            "switchyard-baseline": side("switchyard-baseline", 1000.0, 1.0, 4.0, 80.0),
            "switchyard-baseline-chat": {"name": "b", "label": "b", "error": "did not start"},
        },
    }
    text = render(data)
    assert "## Before / after (issue #11)" in text and "`main` (abc1234)" in text
    assert (
        "| POST /v1/complete with routing auto | max throughput, 0 ms delay (req/s) | 1,000 | 1,500 | 1.50x |" in text
    )
    assert "| CPU per request (ms) | 1.000 | 0.500 | 0.50x |" in text
    assert "| CPU per stream (ms) | 4.000 | 2.000 | 0.50x |" in text
    assert "| peak RSS (MB) | 80.0 | 60.0 | 0.75x |" in text
    assert "| CPU per request (ms) | failed | not run | n/a |" in text  # the chat pair
    del data["targets"]["switchyard-baseline"], data["targets"]["switchyard-baseline-chat"]
    assert "Before / after" not in render(data)
