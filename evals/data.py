"""What a benchmark run needs: a graph built from training interactions, and episode splits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from crs.kb import build_graph, load_catalog, load_interactions, load_scpr
from crs.kb.graph import KnowledgeGraph

__all__ = ["BenchmarkData", "load_benchmark_data"]


@dataclass(frozen=True)
class BenchmarkData:
    name: str
    graph: KnowledgeGraph  # built from the train split only
    splits: dict[str, list[tuple[str, str]]]
    enumerate_facets: bool  # several facets: questions are answered with all values of a facet


def load_benchmark_data(
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    *,
    catalog: str | Path | None = None,
    interactions: str | Path | None = None,
) -> BenchmarkData:
    """Either an SCPR dataset (``lastfm``/``lastfm_star`` under ``data_dir``) or a catalog in
    the project's own format plus interactions.

    Own formats are split leave-one-out per user, in file order (or by timestamp when every
    row has one): the last interaction is test, the one before valid, the rest train.
    """
    if catalog is not None or interactions is not None:
        if catalog is None or interactions is None:
            raise ValueError("--catalog and --interactions go together")
        cat = load_catalog(catalog)
        rows = load_interactions(interactions)
        if rows and all(r.timestamp is not None for r in rows):
            rows = sorted(rows, key=lambda r: r.timestamp or 0.0)
        per_user: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            per_user[r.user].append(r.item)
        splits: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": []}
        for user, items in per_user.items():
            *rest, last = items
            splits["test"].append((user, last))
            if rest:
                *train, before = rest
                splits["valid"].append((user, before))
                splits["train"].extend((user, i) for i in train)
        known = {item.id for item in cat.items}
        splits = {k: [p for p in v if p[1] in known] for k, v in splits.items()}
        facets = {facet for item in cat.items for facet in item.attributes}
        return BenchmarkData(Path(catalog).stem, build_graph(cat, splits["train"]), splits, len(facets) > 1)
    if dataset is None or data_dir is None:
        raise ValueError("give --dataset and --data-dir, or --catalog and --interactions")
    ds = load_scpr(data_dir, dataset)
    return BenchmarkData(dataset, ds.graph, ds.splits, False)
