"""`crs eval mcr` / `crs train scorer` through typer's runner on the shared LastFM data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import app
from tests.conftest import require_data

runner = CliRunner()
TIMING = ("episodes_per_sec", "episodes_per_sec_wall", "train_seconds")


def mcr(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["eval", "mcr", *args])
    return result.exit_code, result.output


def test_list_policies_and_unknown_policy() -> None:
    code, out = mcr("--list-policies")
    assert code == 0 and "best" in out and "maxent" in out and "rejection_use=" in out
    code, out = mcr("--policy", "nope", "--dataset", "lastfm")
    assert code == 2 and "known policies" in out


def test_short_run_on_lastfm_is_deterministic(tmp_path: Path) -> None:
    data = require_data("lastfm")
    rows = []
    for name in ("a", "b"):
        code, out = mcr("--dataset", "lastfm", "--data-dir", str(data), "--policy", "maxent", "--episodes", "50",
                        "--seed", "3", "--no-rule", "prune", "--json", str(tmp_path / f"{name}.json"))
        assert code == 0, out
        assert "| lastfm | maxent | prune | none |" in out
        rows.append(json.loads((tmp_path / f"{name}.json").read_text()))
    for key in ("dataset", "policy", "no_rule", "episodes", "seed", "max_turns", "topk", "SR@5", "SR@10",
                "SR@15", "AT", "hDCG", "episodes_per_sec", "train_seconds", "rejection_use", "success_curve"):
        assert key in rows[0]
    same = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    assert same[0] == same[1]
    assert rows[0]["episodes"] == 50 and len(rows[0]["success_curve"]) == 15


@pytest.mark.slow
def test_train_then_compare_on_lastfm(tmp_path: Path) -> None:
    data = require_data("lastfm")
    model = tmp_path / "fm.npz"
    result = runner.invoke(app, ["train", "scorer", "--dataset", "lastfm", "--data-dir", str(data),
                                 "--out", str(model), "--epochs", "5"])
    assert result.exit_code == 0, result.output
    code, out = mcr("--dataset", "lastfm", "--data-dir", str(data), "--model", str(model), "--episodes", "100",
                    "--compare", "maxent,best", "--table", str(tmp_path / "t.md"), "--plot", str(tmp_path / "p.png"),
                    "--json", str(tmp_path / "r.json"))
    assert code == 0, out
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["policy"] for r in rows] == ["maxent", "best"]
    assert (tmp_path / "p.png").stat().st_size > 1000 and "| best |" in (tmp_path / "t.md").read_text()
