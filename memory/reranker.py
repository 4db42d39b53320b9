"""Retrospective reflection (RMM): a small reranker over retrieved memories, learned online.

Residual linear adapters on the query and memory embeddings, low-rank so one user's state is
small (``W = U Vᵀ``, rank ``r``)::

    q' = q + U_q V_qᵀ q        m' = m + U_m V_mᵀ m        score = q'·m'

``U`` starts at zero, so an untrained reranker ranks exactly like plain cosine retrieval.
Of the top ``K`` retrieved, ``M`` are sampled without replacement (Gumbel-top-M on
``score / temperature``, seeded). After the reply, each sampled memory gets a reward (+1 if
the reply used it and the recommendation was accepted, less if not) and the adapters take a
REINFORCE step on ``log softmax(score / temperature)`` with a running-mean baseline.

State is kept **per user**, one ``.npz`` per user beside the store: a user's signals never
shape another user's retrieval, forget-me deletes exactly one file, and concurrent writers of
different users never race on one file. Low rank keeps that affordable (rank 8 at 256-d is
16 KB per user instead of 512 KB for two full matrices).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crs.memory.config import RerankerSettings

__all__ = ["Reranker", "RerankerBank", "RerankerSettings", "gumbel_top_m"]

log = logging.getLogger(__name__)
F32 = NDArray[np.float32]


def gumbel_top_m(logits: NDArray[np.float64], m: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """M indices sampled without replacement with probabilities ∝ softmax(logits) (Plackett-Luce).

    >>> gumbel_top_m(np.array([0.0, 50.0, -50.0]), 1, np.random.default_rng(0)).tolist()
    [1]
    """
    g = rng.gumbel(size=len(logits))
    return np.argsort(-(logits + g), kind="stable")[: min(m, len(logits))].astype(np.int64)


def _softmax(x: NDArray[np.float64]) -> NDArray[np.float64]:
    z: NDArray[np.float64] = np.exp(x - x.max())
    return z / float(z.sum())


@dataclass
class Reranker:
    """One user's adapters and reward baseline."""

    u_q: F32
    v_q: F32
    u_m: F32
    v_m: F32
    baseline: float = 0.0
    updates: int = 0

    @classmethod
    def fresh(cls, dim: int, settings: RerankerSettings, seed: int) -> Reranker:
        rng = np.random.default_rng(seed)
        r = settings.rank
        scale = settings.init_scale / np.sqrt(dim)
        return cls(
            u_q=np.zeros((dim, r), np.float32), v_q=(rng.standard_normal((dim, r)) * scale).astype(np.float32),
            u_m=np.zeros((dim, r), np.float32), v_m=(rng.standard_normal((dim, r)) * scale).astype(np.float32),
        )

    @property
    def dim(self) -> int:
        return int(self.u_q.shape[0])

    def adapt(self, q: F32, mems: F32) -> tuple[F32, F32]:
        qa = q + self.u_q @ (self.v_q.T @ q)
        ma = mems + (mems @ self.v_m) @ self.u_m.T
        return qa.astype(np.float32), ma.astype(np.float32)

    def scores(self, q: F32, mems: F32) -> NDArray[np.float64]:
        qa, ma = self.adapt(q, mems)
        return (ma @ qa).astype(np.float64)

    def update(
        self, q: F32, mems: F32, chosen: Sequence[int], rewards: Sequence[float], settings: RerankerSettings
    ) -> None:
        """One REINFORCE step: raise log p of well-rewarded sampled memories, lower the rest."""
        if len(chosen) == 0:
            return
        tau = settings.temperature
        p = _softmax(self.scores(q, mems) / tau)
        r = np.asarray(rewards, dtype=np.float64)
        adv = r - self.baseline
        # Σ_i A_i ∇log p_i = (1/τ) Σ_j c_j ∇s_j with c_j = A_j[j sampled] − (Σ_i A_i) p_j
        c = -adv.sum() * p
        np.add.at(c, np.asarray(chosen, dtype=np.int64), adv)
        c = (c / tau).astype(np.float32)
        qa, ma = self.adapt(q, mems)
        mc = ma.T @ c  # Σ c_j m'_j
        rawc = mems.T @ c  # Σ c_j m_j
        grads = [
            np.outer(mc, self.v_q.T @ q),  # ∂/∂U_q
            np.outer(q, self.u_q.T @ mc),  # ∂/∂V_q
            np.outer(qa, self.v_m.T @ rawc),  # ∂/∂U_m
            np.outer(rawc, self.u_m.T @ qa),  # ∂/∂V_m
        ]
        norm = float(np.sqrt(sum(float((gr**2).sum()) for gr in grads)))
        step = settings.learning_rate * min(1.0, settings.max_grad_norm / max(norm, 1e-12))
        for param, grad in zip((self.u_q, self.v_q, self.u_m, self.v_m), grads, strict=True):
            param += (step * grad).astype(np.float32)
        self.baseline = settings.baseline_decay * self.baseline + (1 - settings.baseline_decay) * float(r.mean())
        self.updates += 1

    # ------------------------------------------------------------- persistence
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, u_q=self.u_q, v_q=self.v_q, u_m=self.u_m, v_m=self.v_m,
                     meta=np.array([self.baseline, self.updates], dtype=np.float64))
        tmp.replace(path)  # atomic: a crash leaves the old state, never half a file

    @classmethod
    def load(cls, path: Path) -> Reranker:
        with np.load(path) as data:
            meta = data["meta"]
            return cls(u_q=data["u_q"].astype(np.float32), v_q=data["v_q"].astype(np.float32),
                       u_m=data["u_m"].astype(np.float32), v_m=data["v_m"].astype(np.float32),
                       baseline=float(meta[0]), updates=int(meta[1]))


class RerankerBank:
    """Per-user rerankers, persisted as ``<dir>/<sha256(user)>.npz`` (or in memory with no dir)."""

    def __init__(self, folder: str | Path | None, settings: RerankerSettings | None = None,
                 *, cache_size: int = 256) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.settings = settings or RerankerSettings()
        self._cache: OrderedDict[str, Reranker] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.RLock()

    def path(self, user_id: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / (hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40] + ".npz")

    def get(self, user_id: str, dim: int) -> Reranker:
        with self._lock:
            model = self._cache.get(user_id)
            if model is not None and model.dim == dim:
                self._cache.move_to_end(user_id)
                return model
            path = self.path(user_id)
            model = None
            if path is not None and path.is_file():
                try:
                    model = Reranker.load(path)
                except Exception as exc:  # a damaged file: start fresh, keep the file for inspection
                    log.warning("reranker state %s unreadable (%s); using plain retrieval", path, exc)
                    model = None
            if model is None or model.dim != dim:
                seed = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "little")
                model = Reranker.fresh(dim, self.settings, seed)
            self._cache[user_id] = model
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return model

    def save(self, user_id: str) -> None:
        with self._lock:
            model = self._cache.get(user_id)
            path = self.path(user_id)
            if model is not None and path is not None:
                model.save(path)

    def forget(self, user_id: str) -> bool:
        with self._lock:
            self._cache.pop(user_id, None)
            path = self.path(user_id)
            if path is not None and path.exists():
                path.unlink()
                return True
            return False
