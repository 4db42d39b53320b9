"""`crs eval mcr` / `crs train scorer` through typer's runner on the shared LastFM data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crs.evals.cli import app
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


def test_own_catalog_and_interactions_with_enumerated_questions(tmp_path: Path) -> None:
    from crs.kb import BUNDLED_CATALOG, load_catalog

    items = load_catalog(BUNDLED_CATALOG).items
    rows = ["user,item"] + [f"u{n % 40},{item.id}" for n, item in enumerate(items * 2) if n % 3]
    interactions = tmp_path / "listens.csv"
    interactions.write_text("\n".join(rows) + "\n", "utf-8")
    out_json = tmp_path / "own.json"
    code, out = mcr("--catalog", str(BUNDLED_CATALOG), "--interactions", str(interactions), "--policy", "maxent",
                    "--episodes", "30", "--seed", "1", "--no-rule", "strict", "--json", str(out_json))
    assert code == 0, out
    result = json.loads(out_json.read_text())
    assert result["episodes"] == 30 and result["policy"] == "maxent" and result["no_rule"] == "strict"
    # questions name a facet and are answered with all of the target's values in it, so the
    # six-facet catalog is solved in a few turns
    assert result["SR@15"] > 0.9 and 1 <= result["AT"] < 6


@pytest.mark.slow
def test_train_tunes_on_valid_and_eval_uses_and_reports_the_stored_settings_under_either_protocol(
        tmp_path: Path) -> None:
    from crs.kb.synth import synth_catalog, write_synth

    catalog, interactions = write_synth(
        synth_catalog(items=300, attributes=40, users=150, interactions=2400, seed=5, facets=4), tmp_path)
    model = tmp_path / "fm.npz"
    report = tmp_path / "train.json"
    result = runner.invoke(app, ["train", "scorer", "--catalog", str(catalog), "--interactions", str(interactions),
                                 "--out", str(model), "--tune-episodes", "60", "--questions", "binary",
                                 "--json", str(report)])
    assert result.exit_code == 0, result.output
    tuned = json.loads(report.read_text())["tuned"]
    # temperature × threshold at a share of wrong "no" answers of 0.1, then 0.2 and 0.3 at the winner
    assert tuned["split"] == "valid" and len(tuned["grid"]) == 17 and tuned["enumerate_facets"] is False
    assert [r["answer_noise"] for r in tuned["grid"]] == [0.1] * 15 + [0.2, 0.3]
    assert {(r["temperature"], r["confidence"]) for r in tuned["grid"][15:]} == {
        (tuned["settings"]["temperature"], tuned["settings"]["confidence"])}
    best_point = max(tuned["grid"], key=lambda r: (round(r["SR@15"], 4), -r["AT"]))
    assert tuned["settings"] == {k: best_point[k] for k in ("temperature", "confidence", "answer_noise")}
    rows = {}
    for questions in ("binary", "enumerated"):
        out_json = tmp_path / f"{questions}.json"
        code, out = mcr("--catalog", str(catalog), "--interactions", str(interactions), "--model", str(model),
                        "--compare", "maxent,best", "--episodes", "80", "--questions", questions,
                        "--json", str(out_json), "--table", str(tmp_path / "t.md"), "--plot", str(tmp_path / "p.png"))
        assert code == 0, out
        assert "settings tuned on the valid split" in out
        rows[questions] = {r["policy"]: r for r in json.loads(out_json.read_text())}
        assert rows[questions]["best"]["settings"] == tuned["settings"] and rows[questions]["best"]["tuned"] is True
        assert rows[questions]["maxent"]["tuned"] is False
        assert all(r["questions"] == questions for r in rows[questions].values())
    # a yes/no about one attribute tells less than all of a facet's values: more turns to succeed
    assert rows["binary"]["maxent"]["AT"] > rows["enumerated"]["maxent"]["AT"]
    code, out = mcr("--catalog", str(catalog), "--interactions", str(interactions), "--questions", "maybe")
    assert code == 2 and "--questions must be binary or enumerated" in out
