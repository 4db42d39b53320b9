"""The multi-session memory evaluation (``crs eval memory``) on a small sample of LastFM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crs.evals.memory import (
    HISTORY_PROFILES,
    TUNED_FADES,
    TUNED_PROFILES,
    history_reference,
    measure_retrieval_latency,
    memory_command,
    run_memory_eval,
)
from crs.memory import ProfileSettings
from crs.reasoning.policy import PolicySettings
from tests.conftest import require_data


def test_latency_measurement_on_a_small_store(tmp_path: Path) -> None:
    result = measure_retrieval_latency(20, 10, queries=40, seed=0, workdir=tmp_path)
    assert result["memories"] == 200 and result["cross_user_leaks"] == 0 and result["sampled_user_counts_ok"]
    assert 0 < result["p50_ms"] <= result["p95_ms"]
    assert not any(tmp_path.iterdir())  # the temporary store is removed


@pytest.mark.slow
def test_memory_eval_reports_every_number() -> None:
    data_dir = require_data("lastfm")
    r = run_memory_eval("lastfm", data_dir, users=24, sessions=4, seed=3, split="valid", drift_share=0.5,
                        latency_memories=400, latency_users=20, latency_queries=40)
    for key in ("AT", "SR@15", "drift_accuracy", "cross_user_leaks", "p50_ms", "p95_ms",
                "reflection_seconds_per_session", "floors"):
        assert key in r
    assert set(r["AT"]) == {"memory_on", "memory_off", "ratio"}
    assert r["no_rule"] == "strict" and r["top_k"] == 10 and r["max_turns"] == 15
    assert r["cross_user_leaks"] == 0
    assert r["drift_sessions"] > 0 and r["drift_accuracy"] >= 0.95
    assert r["first_session"]["memory_on"] == r["first_session"]["memory_off"]  # nothing to recall yet
    assert r["AT"]["memory_on"] <= r["AT"]["memory_off"] and r["SR@15"]["memory_on"] >= r["SR@15"]["memory_off"]


@pytest.mark.slow
def test_memory_command_writes_json(tmp_path: Path) -> None:
    data_dir = require_data("lastfm")
    app = typer.Typer()
    app.command()(memory_command)
    out = tmp_path / "crs.memory.json"
    res = CliRunner().invoke(app, ["--dataset", "lastfm", "--data-dir", str(data_dir), "--users", "6",
                                   "--sessions", "2", "--seed", "1", "--latency-memories", "0",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["users"] == 6
    assert result["profile_settings"] == TUNED_PROFILES["lastfm"].model_dump()
    bad = CliRunner().invoke(app, ["--dataset", "movielens"])
    assert bad.exit_code == 2 and "unknown dataset" in bad.output


@pytest.mark.slow
def test_profile_settings_are_per_dataset_and_can_be_overridden(tmp_path: Path) -> None:
    data_dir = require_data("lastfm_star")
    # The two benchmarks' vocabularies differ by 250x: their tuned settings differ too.
    assert TUNED_PROFILES["lastfm_star"] != TUNED_PROFILES["lastfm"]
    app = typer.Typer()
    app.command()(memory_command)
    out = tmp_path / "crs.memory.json"
    args = ["--dataset", "lastfm_star", "--data-dir", str(data_dir), "--users", "4", "--sessions", "2",
            "--latency-memories", "0", "--json", str(out)]
    res = CliRunner().invoke(app, [*args, "--profile", '{"dislike_scale": 2.5}'])
    assert res.exit_code == 0, res.output
    used = json.loads(out.read_text())["profile_settings"]
    assert json.loads(out.read_text())["prior_fade"] == TUNED_FADES["lastfm_star:popularity"]  # chosen on valid
    expected = ProfileSettings.model_validate({**TUNED_PROFILES["lastfm_star"].model_dump(), "dislike_scale": 2.5})
    assert used == expected.model_dump()
    for bad, message in (('{"dislike_scal": 2}', "dislike_scal"), ("[1]", "JSON object"),
                         ("{nope", "--profile"), ('{"like_scale": -1}', "like_scale")):
        res = CliRunner().invoke(app, [*args, "--profile", bad])
        assert res.exit_code == 2 and message in res.output, (bad, res.output)
    res = CliRunner().invoke(app, [*args, "--prior-fade", "0.7"])
    assert res.exit_code == 0 and json.loads(out.read_text())["prior_fade"] == 0.7, res.output
    for bad in ("0", "1.5"):
        res = CliRunner().invoke(app, [*args, "--prior-fade", bad])
        assert res.exit_code == 2 and "--prior-fade must be in (0, 1]" in res.output, res.output


@pytest.mark.slow
def test_history_reference_runs_the_same_sessions_with_the_whole_history() -> None:
    data_dir = require_data("lastfm")
    r = history_reference("lastfm", data_dir, users=20, sessions=3, seed=0, split="valid")
    assert r["memory_off"]["episodes"] == r["training_history_prior"]["episodes"] > 20  # returning sessions only
    assert r["training_history_prior"]["AT"] < r["memory_off"]["AT"]  # a whole history is worth something
    assert r["AT_ratio"] == round(r["training_history_prior"]["AT"] / r["memory_off"]["AT"], 4)


@pytest.mark.slow
def test_person_protocol_reports_warm_against_cold_with_claims_and_drift(tmp_path: Path) -> None:
    from crs.evals.memory_person import run_person_eval

    data_dir = require_data("lastfm")
    r = run_person_eval("lastfm", data_dir, users=6, sessions=4, seed=2, drift_share=0.5, strategy=None,
                        workdir=tmp_path, episodes=True)
    assert r["protocol"] == "person" and r["engine"] == "popularity" and r["users"] == 6
    assert r["warm"]["episodes"] == r["cold"]["episodes"] == 18  # sessions 2..4 of each user
    assert len(r["warm_turns"]) == len(r["cold_turns"]) == 18  # episode by episode, for paired comparisons
    assert sum(t is not None for t in r["warm_turns"]) / 18 == pytest.approx(r["warm"]["SR@15"], abs=1e-3)
    found = [(w is not None, c is not None) for w, c in zip(r["warm_turns"], r["cold_turns"], strict=True)]
    assert r["paired"] == {"warm_only": found.count((True, False)), "cold_only": found.count((False, True)),
                           "neither": found.count((False, False))}
    assert r["prior_fade"] == PolicySettings().prior_fade
    assert r["drift_sessions"] > 0 and r["drift_respected"] == 1.0
    assert r["invented_preferences"] == 0 and r["repeats"] == 0
    assert set(r["floors"]) == {"warm_sr_at_least_cold", "warm_at_at_most_0.9_cold", "drift_respected_1.0",
                                "no_invented_preferences"}
    assert not any(tmp_path.iterdir())  # the temporary state is removed


@pytest.mark.slow
def test_scpr_protocol_compares_with_the_whole_history_reference() -> None:
    data_dir = require_data("lastfm")
    r = run_memory_eval("lastfm", data_dir, users=10, sessions=3, seed=1, split="valid", latency_memories=0)
    assert r["protocol"] == "scpr" and r["engine"] == "popularity"
    assert r["history_reference"]["AT"] > 0 and "share_of_history_saving" in r
    # the reference has settings of its own, tuned for a whole history, not the memory's
    assert r["history_reference"]["profile_settings"] == HISTORY_PROFILES["lastfm:popularity"].model_dump()
    assert r["history_reference"]["profile_settings"] != r["profile_settings"]
    assert r["floors"]["turns_25pct_fewer"] is None and r["floors"]["history_saving_90pct"] in (True, False, None)


@pytest.mark.slow
def test_scpr_protocol_splits_the_returning_sessions_by_what_memory_holds() -> None:
    data_dir = require_data("lastfm")
    r = run_memory_eval("lastfm", data_dir, users=12, sessions=3, seed=1, split="valid", latency_memories=0,
                        drift_share=0.0)
    ev = r["evidence"]
    assert ev["history_items_mean"] > 10 and 0 <= ev["memory"]["share_with_none"] <= 1
    groups = ev["by_evidence"]
    assert sum(groups[g]["episodes"] for g in ("no_choice_remembered", "choices_remembered")
               if g in groups) == r["returning_episodes"]
    if "no_choice_remembered" in groups:  # nothing chosen yet: the memory-on session is the memory-off one
        assert groups["no_choice_remembered"]["memory_on"] == groups["no_choice_remembered"]["memory_off"]


@pytest.mark.slow
def test_tuning_reads_the_valid_split_and_ranks_settings_by_memory_on_at() -> None:
    from crs.evals.memory import tune_profile_settings

    data_dir = require_data("lastfm")
    rows = tune_profile_settings("lastfm", data_dir, users=6, sessions=2, seed=0,
                                 grid=[{"smoothing": 1.0}, {"item_weight": 2.0}])
    assert [sorted(r["params"]) for r in rows] in ([["smoothing"], ["item_weight"]], [["item_weight"], ["smoothing"]])
    assert rows[0]["AT_on"] <= rows[1]["AT_on"] and all(r["AT_off"] == rows[0]["AT_off"] for r in rows)
