"""The chatbot runs the best engine by default where a catalog has interactions; popularity is
only the fallback, and then no reply claims popularity."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crs.api import InvalidInput, Recommender
from crs.kb import BUNDLED_CATALOG
from crs.kb.synth import synth_catalog, write_synth
from crs.reasoning.fm import FMScorer
from crs.reasoning.scoring import PopularityScorer
from crs.settings import Settings


@pytest.fixture
def synth(tmp_path: Path) -> tuple[Path, Path]:
    made = synth_catalog(items=200, attributes=30, users=60, interactions=900, seed=2, facets=3)
    return write_synth(made, tmp_path / "data")


def settings_for(tmp_path: Path, catalog: Path, interactions: Path | None, **changes: object) -> Settings:
    return Settings(catalog=catalog, interactions=interactions, state_dir=tmp_path / "state", memory=False,
                    embeddings=False, **changes)


def test_interactions_mean_best_trained_once_then_loaded_and_retrained_when_they_change(
        tmp_path: Path, synth: tuple[Path, Path]) -> None:
    catalog, interactions = synth
    notices: list[str] = []
    epochs: list[int] = []
    settings = settings_for(tmp_path, catalog, interactions)
    first = Recommender.from_settings(settings, training_notice=notices.append,
                                      training_progress=lambda e, n, loss: epochs.append(e))
    assert first.policy_name == "best" and isinstance(first.engine.scorer, FMScorer)
    assert len(notices) == 1 and "first use" in notices[0] and epochs[-1] == len(epochs) >= 3
    cached = list((tmp_path / "state" / "models").glob("fm-*.npz"))
    assert len(cached) == 1

    second = Recommender.from_settings(settings, training_notice=notices.append)
    assert len(notices) == 1  # loaded, not trained
    assert isinstance(second.engine.scorer, FMScorer)
    assert np.array_equal(second.engine.scorer.q, first.engine.scorer.q)

    lines = interactions.read_text("utf-8").splitlines()
    interactions.write_text("\n".join(lines[:-5]) + "\n", "utf-8")  # the data changed
    Recommender.from_settings(settings, training_notice=notices.append)
    assert len(notices) == 2 and len(list((tmp_path / "state" / "models").glob("fm-*.npz"))) == 2


def test_a_damaged_cache_file_is_retrained_not_trusted(tmp_path: Path, synth: tuple[Path, Path]) -> None:
    catalog, interactions = synth
    settings = settings_for(tmp_path, catalog, interactions)
    Recommender.from_settings(settings, training_notice=lambda line: None)
    (path,) = (tmp_path / "state" / "models").glob("fm-*.npz")
    path.write_bytes(b"not a model")
    notices: list[str] = []
    rec = Recommender.from_settings(settings, training_notice=notices.append)
    assert isinstance(rec.engine.scorer, FMScorer) and len(notices) == 1
    assert path.stat().st_size > 1000


def test_policy_and_model_settings_choose_the_engine(tmp_path: Path, synth: tuple[Path, Path]) -> None:
    catalog, interactions = synth
    rec = Recommender.from_settings(settings_for(tmp_path, catalog, interactions, strategy="maxent"))
    assert rec.policy_name == "maxent" and isinstance(rec.engine.scorer, PopularityScorer)
    with pytest.raises(InvalidInput, match="no interactions to train one on"):
        Recommender.from_settings(settings_for(tmp_path, catalog, None, strategy="best"))
    with pytest.raises(InvalidInput, match="no such model file"):
        Recommender.from_settings(settings_for(tmp_path, catalog, interactions, model=tmp_path / "missing.npz"))


def test_without_interactions_popularity_is_the_fallback_and_no_reason_claims_it(tmp_path: Path) -> None:
    rec = Recommender.from_settings(settings_for(tmp_path, BUNDLED_CATALOG, None))
    assert rec.policy_name == "popularity"
    reply = rec.chat("ann", "s", "just recommend something")
    assert reply.action == "recommend" and reply.recommendations
    assert "popular" not in reply.text.lower()
    for line in reply.text.splitlines()[1:]:
        assert line.rstrip(")").split("(")[-1].strip(), line  # each pick still says something about itself


@pytest.mark.slow
def test_chat_trains_on_first_start_with_a_notice_and_loads_after(tmp_path: Path, synth: tuple[Path, Path]) -> None:
    catalog, interactions = synth
    env = {**os.environ, "HOME": str(tmp_path), "CRS_HOME": str(tmp_path / "crs")}
    args = [sys.executable, "-m", "crs.cli", "chat", "--catalog", str(catalog), "--interactions", str(interactions),
            "--json"]
    first = subprocess.run(args, input="t1\n", capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "training the scorer on this catalog's" in first.stderr and "epoch" in first.stderr
    second = subprocess.run(args, input="t1\n", capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0 and "training" not in second.stderr
    assert first.stdout == second.stdout  # the same model, the same reply
    other = subprocess.run([*args, "--policy", "nope"], input="", capture_output=True, text=True, env=env,
                           timeout=300)
    assert other.returncode == 2 and "unknown policy 'nope'" in other.stderr
