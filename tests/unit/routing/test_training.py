"""Reading the operator's training data (JSONL answers, RouterBench-style CSV) and the CLI that trains."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.cli import main
from app.routing.learned import LearnedRouter
from app.routing.training import TrainingDataError, prompt_text, read_samples
from tests.unit.routing.learned_data import samples


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_rows_group_by_prompt(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"prompt": "p1", "model": "a", "score": 1, "cost": 0.5},
            {"prompt": "p1", "model": "b", "score": 0.25},
            {"prompt": "p2", "model": "a", "score": 0},
        ],
    )
    rows = read_samples([path])
    assert [(s.prompt, s.scores, s.costs) for s in rows] == [
        ("p1", {"a": 1.0, "b": 0.25}, {"a": 0.5}),
        ("p2", {"a": 0.0}, {}),
    ]


def test_routerbench_csv_columns(tmp_path: Path) -> None:
    path = tmp_path / "rb.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "",
                "sample_id",
                "prompt",
                "eval_name",
                "m1",
                "m2",
                "m1|model_response",
                "m1|total_cost",
                "m2|total_cost",
                "oracle_model_to_route_to",
            ]
        )
        writer.writerow([0, "x.1", "['Solve 2+2']", "x", "1.0", "0.0", "4", "0.01", "0.001", "m1"])
        writer.writerow([1, "x.2", "plain prompt", "x", "", "1.0", "", "", "0.002", "m2"])
    rows = read_samples([path])
    assert rows[0].prompt == "Solve 2+2" and rows[0].scores == {"m1": 1.0, "m2": 0.0}
    assert rows[0].costs == {"m1": 0.01, "m2": 0.001}
    assert rows[1].scores == {"m2": 1.0}  # an empty cell is no data, not a zero


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"bad.jsonl:1: not JSON"),
        ('{"prompt": "p", "score": 1}', "needs string 'prompt' and 'model'"),
        ('{"prompt": "p", "model": "a", "score": 1.5}', "outside 0..1"),
        ('{"prompt": "p", "model": "a", "score": "good"}', "not a number"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=message):
        read_samples([path])


def test_prompt_text_of_routerbench_turns() -> None:
    assert prompt_text("['first', 'second']") == "first\nsecond"
    assert prompt_text("[not a list") == "[not a list"


def test_cli_trains_a_file_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": s.prompt, "model": m, "score": v} for s in samples() for m, v in s.scores.items()]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    out = tmp_path / "router.npz"
    assert main(["router", "train", "--out", str(out), "--config", str(tmp_path / "none.yaml"), str(data)]) == 0
    assert "2 models" in capsys.readouterr().out
    assert LearnedRouter.load(out).models == ("big", "small")


def test_cli_reports_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "router.npz"
    assert main(["router", "train", "--out", str(out), str(tmp_path / "missing.csv")]) == 1
    assert "no such file" in capsys.readouterr().err and not out.exists()
