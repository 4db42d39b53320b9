"""The FM scorer of a catalog, trained once and kept in the state folder.

The file name carries a hash of everything the model depends on: the catalog's items and
attributes, the interactions, the training settings and the model format. A later start on
the same catalog loads it (well under a second); a changed catalog or changed interactions
give another hash, so the model is trained again. A cache file that cannot be read is
retrained over, never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from crs.kb.graph import KnowledgeGraph
from crs.reasoning.fm import FM_FORMAT_VERSION, FMConfig, FMModel, ModelVersionError, load_fm, train_fm
from crs.reasoning.policies import graph_pairs

__all__ = ["Progress", "cached_model", "graph_fingerprint", "model_cache_path"]

logger = logging.getLogger(__name__)

#: ``progress(epoch, epochs, loss)`` during training.
Progress = Callable[[int, int, float], None]


def graph_fingerprint(graph: KnowledgeGraph, config: FMConfig | None = None) -> str:
    """A hex digest of the items, attributes, interactions and training settings."""
    digest = hashlib.sha256()
    cfg = config or FMConfig.for_graph(graph)
    digest.update(f"fm-v{FM_FORMAT_VERSION}|{sorted(asdict(cfg).items())}".encode())
    for text in ("\x1f".join(graph.item_ids), "\x1f".join(graph.attr_ids)):
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1e")
    digest.update(np.ascontiguousarray(graph.item_attrs.indptr, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(graph.item_attrs.indices, dtype=np.int64).tobytes())
    for user in sorted(graph.user_items):
        digest.update(user.encode("utf-8") + b"\x1f")
        digest.update(np.ascontiguousarray(graph.user_items[user], dtype=np.int64).tobytes())
    return digest.hexdigest()


def model_cache_path(state_dir: Path, graph: KnowledgeGraph) -> Path:
    return Path(state_dir) / "models" / f"fm-{graph_fingerprint(graph)[:20]}.npz"


def cached_model(
    graph: KnowledgeGraph,
    state_dir: Path,
    *,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> FMModel:
    """The catalog's FM model from the cache, or trained now on its interactions and cached.

    ``notice`` receives one line before training starts (the command line prints it; the
    default logs it); ``progress`` follows the epochs.
    """
    path = model_cache_path(state_dir, graph)
    if path.is_file():
        try:
            return load_fm(path, graph)
        except (ModelVersionError, OSError) as exc:
            logger.warning("retraining the cached scorer %s: %s", path, exc)
    pairs = graph_pairs(graph)
    line = (f"training the scorer on this catalog's {len(pairs):,} interactions (first use; "
            f"cached in {path.parent})")
    (notice or logger.warning)(line)
    started = time.process_time()
    model = train_fm(graph, pairs, progress=progress)
    model.meta["train_cpu_seconds"] = round(time.process_time() - started, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a run stopped half-way never leaves a truncated model behind.
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fm-", suffix=".npz")
    os.close(handle)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model
