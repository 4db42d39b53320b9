"""Load the LastFM / LastFM* benchmarks in the public SCPR format.

Benchmark ids are kept: item ``"17"`` is benchmark item 17 and graph row 17, and attribute
row ``k`` is benchmark feature ``k``, so results are comparable with the published code.
Names come from ``ID_map_info`` (real artist and tag names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from crs.kb.errors import CatalogError
from crs.kb.graph import KnowledgeGraph, build_graph
from crs.kb.models import Catalog, Interaction, Item, attribute_id

__all__ = ["DATASETS", "ScprDataset", "load_scpr"]

DATASETS = ("lastfm", "lastfm_star")
Split = Literal["train", "valid", "test"]
TAG_FACET = "tag"


@dataclass(frozen=True)
class ScprDataset:
    name: str
    catalog: Catalog
    graph: KnowledgeGraph
    splits: dict[str, list[tuple[str, str]]]  # split → (user, item) pairs, in file order

    def interactions(self, split: Split) -> list[Interaction]:
        return [Interaction(user=u, item=i) for u, i in self.splits[split]]


def dataset_dir(data_dir: str | Path, dataset: str) -> Path:
    """``data_dir`` may be the folder holding ``lastfm/`` or the dataset folder itself."""
    if dataset not in DATASETS:
        raise CatalogError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    base = Path(data_dir)
    root = base if (base / "Graph_generate_data").is_dir() and base.name == dataset else base / dataset
    if not (root / "Graph_generate_data").is_dir():
        raise CatalogError(f"no SCPR dataset {dataset!r} here (expected {root}/Graph_generate_data)", path=base)
    return root


def load_scpr(data_dir: str | Path, dataset: str) -> ScprDataset:
    root = dataset_dir(data_dir, dataset)
    items_raw = _read(root / "Graph_generate_data" / "item_dict.json")
    item_names = _read(root / "ID_map_info" / "item_reverse_map.json")
    tag_names = _read(root / "ID_map_info" / "tag_reverse_map.json")
    tags = [_real_name(tag_names, str(k), f"tag {k}") for k in range(len(tag_names))]
    items = []
    for k in range(len(items_raw)):
        raw = items_raw.get(str(k))
        if raw is None or not raw.get("feature_index"):
            raise CatalogError("item missing or without features", path=root / "item_dict.json", item=str(k))
        items.append(
            Item.model_construct(  # the benchmark files are trusted and large: skip re-validation
                id=str(k),
                name=_real_name(item_names, str(k), f"item {k}"),
                attributes={TAG_FACET: [tags[f] for f in raw["feature_index"]]},
                description="",
            )
        )
    catalog = Catalog(
        items=items, source=str(root), attribute_order=[attribute_id(TAG_FACET, t) for t in tags]
    )
    splits = {
        split: [
            (user, str(item))
            for user, user_items in _read(root / "UI_Interaction_data" / f"review_dict_{split}.json").items()
            for item in user_items
        ]
        for split in ("train", "valid", "test")
    }
    return ScprDataset(dataset, catalog, build_graph(catalog, splits["train"]), splits)


def _real_name(mapping: dict[str, Any], key: str, fallback: str) -> str:
    names = mapping.get(key, {}).get("real_name") or [fallback]
    return str(names[0]).strip() or fallback


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CatalogError("missing benchmark file", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"bad JSON: {exc.msg}", path=path, line=exc.lineno) from None
