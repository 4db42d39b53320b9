"""A seeded synthetic catalog with interactions, in the project's own formats.

For measuring training and evaluation at sizes no public dataset here has. The structure is
what a real catalog shows:

- **Topics.** Attributes belong to latent topics; an item has a main topic and draws most of
  its attributes from it (Zipf-weighted, so each topic has common and rare attributes), the
  rest from the whole vocabulary.
- **Popularity.** Item popularity follows a power law with exponent ``skew`` (0: flat).
- **Users.** Each user likes one or two topics; most of their interactions are items of those
  topics, picked by popularity, the rest any item by popularity. User activity is itself
  heavy-tailed, with at least three interactions each (train, valid and test leave-one-out).

Everything comes from one ``numpy.random.Generator`` seeded with ``seed``: the same arguments
write the same files.

>>> cat = synth_catalog(items=50, attributes=20, users=10, interactions=80, seed=1)
>>> len(cat.items), len(cat.interactions) <= 80, cat.items[0]["id"]
(50, True, 'i0')
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SynthCatalog", "synth_catalog", "write_synth"]


@dataclass(frozen=True)
class SynthCatalog:
    items: list[dict[str, object]]  # catalog rows: id, name, attributes {facet: [values]}
    interactions: list[tuple[str, str]]  # (user, item), in time order per user


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights: np.ndarray = 1.0 / np.arange(1, n + 1) ** exponent
    share: np.ndarray = weights / weights.sum()
    return share


def synth_catalog(
    *,
    items: int,
    attributes: int,
    users: int,
    interactions: int,
    seed: int = 0,
    attrs_per_item: int = 8,
    skew: float = 1.0,
    topics: int | None = None,
    facets: int = 1,
    on_topic: float = 0.8,
) -> SynthCatalog:
    """Build the catalog rows and interactions (see the module docstring)."""
    if min(items, attributes, users) < 1 or interactions < 3 * users:
        raise ValueError("need at least one item, attribute and user, and 3 interactions per user")
    if not 1 <= attrs_per_item <= attributes:
        raise ValueError(f"attrs_per_item must be between 1 and {attributes}")
    if not 1 <= facets <= attributes:
        raise ValueError(f"facets must be between 1 and {attributes}")
    rng = np.random.default_rng(seed)
    n_topics = topics or max(2, round(np.sqrt(attributes)))
    attr_topic = rng.integers(0, n_topics, size=attributes)
    item_topic = rng.integers(0, n_topics, size=items)
    # Attributes of each topic, shuffled so the Zipf head is a random attribute.
    by_topic = [rng.permutation(np.flatnonzero(attr_topic == t)) for t in range(n_topics)]
    global_p = _zipf(attributes, 1.0)[rng.permutation(attributes)]

    rows: list[dict[str, object]] = []
    item_attrs: list[np.ndarray] = []
    k_items = np.clip(rng.poisson(attrs_per_item - 1, size=items) + 1, 1, attributes)
    for i in range(items):
        pool = by_topic[item_topic[i]]
        k = int(k_items[i])
        n_on = min(len(pool), int(rng.binomial(k, on_topic)))
        chosen = set(rng.choice(pool, size=n_on, replace=False, p=_zipf(len(pool), 1.0)).tolist()) if n_on else set()
        while len(chosen) < k:
            chosen.update(rng.choice(attributes, size=k - len(chosen), p=global_p).tolist())
        attrs = np.sort(np.fromiter(chosen, dtype=np.int64))
        item_attrs.append(attrs)
        grouped: dict[str, list[str]] = {}
        for a in attrs.tolist():
            grouped.setdefault(f"f{a % facets}" if facets > 1 else "tag", []).append(f"t{a}")
        rows.append({"id": f"i{i}", "name": f"Item {i}", "attributes": grouped})

    popularity = _zipf(items, skew)[rng.permutation(items)]
    # Per topic: its items and their popularity, for on-topic picks.
    topic_items = [np.flatnonzero(item_topic == t) for t in range(n_topics)]
    topic_cdf = [np.cumsum(popularity[ix]) for ix in topic_items]
    cdf = np.cumsum(popularity)

    # Activity: heavy-tailed, at least 3 each, summing to `interactions`.
    extra = interactions - 3 * users
    activity = 3 + rng.multinomial(extra, _zipf(users, 0.8)[rng.permutation(users)])
    likes = rng.integers(0, n_topics, size=(users, 2))
    second = rng.random(users) < 0.5  # half the users like a second topic
    pairs: list[tuple[str, str]] = []
    for user in range(users):
        n = min(int(activity[user]), items)
        kept = np.empty(0, dtype=np.int64)
        for _ in range(8):  # top up until n distinct items (repeats of a popular item are dropped)
            drawn = _picks(rng, 2 * (n - len(kept)), likes[user], bool(second[user]), on_topic, topic_items,
                           topic_cdf, cdf)
            merged = np.r_[kept, drawn]
            _, first = np.unique(merged, return_index=True)
            kept = merged[np.sort(first)][:n]
            if len(kept) == n:
                break
        pairs.extend((f"u{user}", f"i{i}") for i in kept.tolist())
    return SynthCatalog(rows, pairs)


def _picks(
    rng: np.random.Generator, n: int, likes: np.ndarray, second: bool, on_topic: float,
    topic_items: list[np.ndarray], topic_cdf: list[np.ndarray], cdf: np.ndarray,
) -> np.ndarray:
    """``n`` items a user picks: mostly from a liked topic by popularity, else any by popularity
    (inverse-CDF draws: a user costs O(n log items), not a pass over the catalog)."""
    topic = np.where(second & (rng.random(n) < 0.5), likes[1], likes[0])
    picked = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(cdf) - 1)
    on = np.flatnonzero(rng.random(n) < on_topic)
    for t in np.unique(topic[on]).tolist():
        where = on[topic[on] == t]
        if len(topic_items[t]):
            draw = np.searchsorted(topic_cdf[t], rng.random(len(where)) * topic_cdf[t][-1], side="right")
            picked[where] = topic_items[t][draw.clip(0, len(topic_items[t]) - 1)]
    result: np.ndarray = picked
    return result


def write_synth(catalog: SynthCatalog, folder: str | Path, name: str = "synth") -> tuple[Path, Path]:
    """Write ``<name>.jsonl`` (the catalog) and ``<name>.interactions.csv`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items_path = folder / f"{name}.jsonl"
    inter_path = folder / f"{name}.interactions.csv"
    with items_path.open("w", encoding="utf-8") as out:
        for row in catalog.items:
            out.write(json.dumps(row) + "\n")
    with inter_path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["user", "item"])
        writer.writerows(catalog.interactions)
    return items_path, inter_path
