"""The seeded synthetic catalog: reproducible, in the project's formats, with the promised structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crs.evals.cli import app
from crs.evals.data import load_benchmark_data
from crs.kb.synth import synth_catalog, write_synth


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = write_synth(synth_catalog(items=300, attributes=40, users=100, interactions=2000, seed=3), tmp_path / "a")
    b = write_synth(synth_catalog(items=300, attributes=40, users=100, interactions=2000, seed=3), tmp_path / "b")
    c = write_synth(synth_catalog(items=300, attributes=40, users=100, interactions=2000, seed=4), tmp_path / "c")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a[1].read_bytes() != c[1].read_bytes()


def test_popularity_is_skewed_or_flat_as_asked_and_every_user_can_be_split(tmp_path: Path) -> None:
    def top_share(skew: float) -> float:
        made = synth_catalog(items=500, attributes=50, users=400, interactions=8000, seed=0, skew=skew)
        counts = np.sort(np.unique([i for _, i in made.interactions], return_counts=True)[1])[::-1]
        return float(counts[:25].sum() / counts.sum())  # share of the top 5% of items

    skewed, flat = top_share(1.2), top_share(0.0)
    assert skewed > 0.3 and flat < 0.2 and skewed > 2 * flat
    made = synth_catalog(items=500, attributes=50, users=400, interactions=8000, seed=0)
    paths = write_synth(made, tmp_path)
    data = load_benchmark_data(catalog=paths[0], interactions=paths[1])  # the project's own loaders
    assert data.graph.n_items == 500 and len(data.splits["test"]) == 400 and len(data.splits["valid"]) == 400
    per_item = np.diff(data.graph.item_attrs.indptr)
    assert per_item.min() >= 1 and 6 <= per_item.mean() <= 10  # about attrs_per_item=8


def test_items_of_a_topic_share_attributes() -> None:
    made = synth_catalog(items=400, attributes=100, users=50, interactions=500, seed=0, topics=10)
    sets = [{v for values in row["attributes"].values() for v in values} for row in made.items]  # type: ignore[union-attr]
    jaccard = [len(sets[i] & sets[j]) / len(sets[i] | sets[j]) for i in range(60) for j in range(i + 1, 60)]
    # some pairs (same topic) overlap far more than random sets of 8 of 100 attributes would (about 0.04)
    assert np.percentile(jaccard, 90) > 0.15


def test_cli_writes_the_files_and_refuses_bad_sizes(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["data", "synth", "--out", str(tmp_path), "--items", "100", "--attributes", "20",
                                 "--users", "30", "--interactions", "400", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "synth.jsonl").is_file() and (tmp_path / "synth.interactions.csv").is_file()
    bad = runner.invoke(app, ["data", "synth", "--out", str(tmp_path), "--users", "30", "--interactions", "50"])
    assert bad.exit_code == 2 and "3 interactions per user" in bad.output


@pytest.mark.parametrize("per_item", [0, 1000])
def test_impossible_attribute_counts_are_refused(per_item: int) -> None:
    with pytest.raises(ValueError, match="attrs_per_item"):
        synth_catalog(items=10, attributes=20, users=3, interactions=9, attrs_per_item=per_item)
