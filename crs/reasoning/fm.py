"""A factorisation-machine scorer in numpy, trained with BPR on (user, item) interactions.

The score has the SCPR/EAR form, extended with item content so that items nobody interacted
with in training (about 40% of the LastFM test targets) still get a sensible vector::

    q_v   = V_v + mean_{c in attrs(v)} C_c                 item = free part + content part
    s(v)  = (U_u + Σ_{a accepted} P_a) · q_v               user·item + Σ attribute·item

The last dimension of every user vector is fixed to 1, so the last dimension of ``q_v`` acts
as an item bias (popularity for warm items, a content prior for cold ones).

Training samples accepted-attribute contexts the way the benchmark simulator produces them:
the target's opening attribute plus a few more of its attributes, and negatives that are
half uniform items and half items sharing the opening attribute (the candidates the policy
actually has to rank). Everything uses one seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from crs.kb.graph import KnowledgeGraph
from crs.reasoning.scoring import FloatArray, IntArray, ScoringContext

__all__ = [
    "FM_FORMAT_VERSION",
    "MIN_ANSWER_NOISE",
    "FMConfig",
    "FMModel",
    "FMScorer",
    "ModelVersionError",
    "RejectionUse",
    "answer_penalty",
    "load_fm",
    "train_fm",
]

#: Bump when the saved arrays or their meaning change; loading another version raises.
FM_FORMAT_VERSION = 2

RejectionUse = Literal["none", "bounded", "learned", "noisy"]

#: The smallest share of wrong "no" answers the ``noisy`` rejection assumes: its penalty is then at
#: most log(0.9 / 0.1) ≈ 2.2 logits, so a "no" only down-weights items and never removes one
#: (the prune rule would be a share of 0, an infinite penalty).
MIN_ANSWER_NOISE = 0.1


def answer_penalty(noise: float) -> float:
    """The logits a "no" takes off an item having the attribute, when a share ``noise`` of
    "no" answers are wrong: the log-likelihood ratio log((1 − noise) / noise) of the answer
    between an item lacking the attribute and one having it.

    >>> round(answer_penalty(0.1), 3)
    2.197
    >>> answer_penalty(0.05)
    Traceback (most recent call last):
    ...
    ValueError: answer_noise must be between 0.1 and 0.5 (a "no" is evidence, not a filter), got 0.05
    """
    if not MIN_ANSWER_NOISE <= noise <= 0.5:
        raise ValueError(f"answer_noise must be between {MIN_ANSWER_NOISE} and 0.5 "
                         f"(a \"no\" is evidence, not a filter), got {noise}")
    return float(np.log((1.0 - noise) / noise))

#: Training draws at most this many (user, item) pairs in all (see :meth:`FMConfig.for_graph`).
SAMPLE_BUDGET = 4_000_000
F32 = NDArray[np.float32]


class ModelVersionError(ValueError):
    """A saved model file written by an incompatible version of this module."""


@dataclass(frozen=True)
class FMConfig:
    dim: int = 64
    epochs: int = 40
    batch_size: int = 4096
    lr: float = 0.01
    reg: float = 1e-5
    max_context: int = 3  # accepted attributes sampled per training pair (≥ 1)
    hard_negatives: float = 0.5  # share of negatives drawn among items sharing the opening attribute
    seed: int = 0
    # Rejected attributes sampled per training pair (0: no learned rejection vectors). They are
    # attributes of a co-candidate (an item sharing the opening attribute) that the target lacks,
    # and that co-candidate is the negative: what a "no" in a dialogue tells apart. Off by
    # default: on 1,000 valid episodes it moved best's SR@15 by 0.007 on LastFM* (10) and
    # not up on LastFM's test split (6: 0.835 against 0.843), for twice the training time.
    max_rejected: int = 0

    @classmethod
    def for_graph(cls, graph: KnowledgeGraph, **changes: Any) -> FMConfig:
        """Defaults sized to the catalog.

        - A large vocabulary (LastFM*: 8,438 tags) trains 20 epochs of 8,192 pairs at a higher
          rate (measured on the valid split: SR@15 0.923 against 0.929, in half the time).
        - Many interactions train fewer epochs: at most :data:`SAMPLE_BUDGET` pairs are drawn
          in all (at least 3 epochs), so training time stops growing with the data once
          there is more of it than the model needs (LastFM's 52,910 pairs × 40 epochs is 2.1 M).
        """
        explicit = "epochs" in changes
        if graph.n_attributes > 1000:
            changes = {"epochs": 20, "batch_size": 8192, "lr": 0.02, **changes}
        if not explicit:
            pairs = sum(len(items) for items in graph.user_items.values())
            epochs = changes.get("epochs", cls.epochs)
            if pairs * epochs > SAMPLE_BUDGET:
                changes = {**changes, "epochs": max(3, SAMPLE_BUDGET // max(pairs, 1))}
        return cls(**changes)


@dataclass
class FMModel:
    """The trained arrays plus what they were trained on (checked when loading)."""

    user_ids: tuple[str, ...]
    users: F32  # (n_users, dim), last column fixed to 1
    items: F32  # (n_items, dim) free item part
    content: F32  # (n_attributes, dim) item content part, averaged over an item's attributes
    attrs: F32  # (n_attributes, dim) accepted-attribute vectors P_a
    meta: dict[str, object] = field(default_factory=dict)
    rejects: F32 | None = None  # (n_attributes, dim) learned rejected-attribute vectors N_r, if trained

    @property
    def dim(self) -> int:
        return int(self.users.shape[1])

    def item_vectors(self, graph: KnowledgeGraph) -> F32:
        """q_v for every item: the free part plus the mean content vector of its attributes."""
        return self.items + _row_means(graph.item_attrs.indptr, graph.item_attrs.indices, self.content)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        meta = {**self.meta, "format_version": FM_FORMAT_VERSION}
        arrays: dict[str, Any] = {
            "users": self.users, "items": self.items, "content": self.content, "attrs": self.attrs,
            "user_ids": np.asarray(self.user_ids, dtype=str), "meta": np.asarray(json.dumps(meta)),
        }
        if self.rejects is not None:
            arrays["rejects"] = self.rejects
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)


def load_fm(path: str | Path, graph: KnowledgeGraph | None = None) -> FMModel:
    """Read a model written by :meth:`FMModel.save`; check its version and, given a graph, its shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in ("users", "items", "content", "attrs", "user_ids")}
            rejects = data["rejects"] if "rejects" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise ModelVersionError(f"{path}: not an FM model file ({exc})") from None
    version = meta.get("format_version")
    if version != FM_FORMAT_VERSION:
        raise ModelVersionError(
            f"{path}: model format version {version}, this code reads version {FM_FORMAT_VERSION}; "
            "retrain it with `crs train scorer`"
        )
    model = FMModel(
        user_ids=tuple(str(u) for u in arrays["user_ids"].tolist()),
        users=arrays["users"], items=arrays["items"], content=arrays["content"], attrs=arrays["attrs"],
        meta=meta, rejects=rejects,
    )
    if graph is not None and (model.items.shape[0], model.attrs.shape[0]) != (graph.n_items, graph.n_attributes):
        raise ModelVersionError(
            f"{path}: model has {model.items.shape[0]} items and {model.attrs.shape[0]} attributes, "
            f"the catalog has {graph.n_items} and {graph.n_attributes}"
        )
    return model


# --------------------------------------------------------------------------- scorer
class FMScorer:
    """Scores candidates with a trained :class:`FMModel`.

    - ``rejection="bounded"`` subtracts, for each rejected attribute r, ``max(0, P_r·q_v)``:
      the very weight r would add to the item if it had been accepted, never more (the
      UNICORN-style bounded use of "no" answers). ``"none"`` ignores rejections.
    - ``rejection="noisy"`` adds to that bounded term the evidence of a "no" from a person
      who answers wrongly a share ``answer_noise`` of the time (at least
      :data:`MIN_ANSWER_NOISE`): :func:`answer_penalty` logits off every item having the
      attribute. Items keep their place among the candidates; only their weight falls.
    - ``exclude_seen`` ranks the items the user already has in the graph's interactions last
      (a recommender does not offer what the person already has).
    - Scores over the whole catalog are cached per (user, accepted, rejected) and built from
      the context one answer shorter, so a dialogue turn costs one attribute row and a few
      vector additions, whatever the number of candidates.
    """

    def __init__(
        self,
        model: FMModel,
        graph: KnowledgeGraph,
        *,
        rejection: RejectionUse = "none",
        exclude_seen: bool = True,
        seen_penalty: float = 1e3,
        cache_size: int = 256,
        answer_noise: float = MIN_ANSWER_NOISE,
    ) -> None:
        self.model = model
        self.rejection: RejectionUse = rejection
        self.answer_noise = answer_noise
        self.no_penalty = answer_penalty(answer_noise) if rejection == "noisy" else 0.0
        self.name = f"fm(rejection={rejection}, answer_noise={answer_noise:g})" if rejection == "noisy" else (
            f"fm(rejection={rejection})")
        # float32 matrix-vector products (twice as fast); sums of rows are kept in float64.
        self.q = np.ascontiguousarray(model.item_vectors(graph), dtype=np.float32)
        self.attrs = np.ascontiguousarray(model.attrs, dtype=np.float32)
        if rejection == "learned":
            if model.rejects is None:
                raise ValueError("this model has no learned rejection vectors; train it with max_rejected > 0")
            self.rejects = np.ascontiguousarray(model.rejects, dtype=np.float32)
        self.users = np.ascontiguousarray(model.users, dtype=np.float32)
        self.user_index = {u: i for i, u in enumerate(model.user_ids)}
        self.mean_user = self.users.mean(axis=0) if len(self.users) else np.zeros(model.dim, np.float32)
        self.exclude_seen = exclude_seen
        self.seen_penalty = seen_penalty
        self.graph = graph
        self._cache_size = cache_size
        self._contexts: OrderedDict[tuple[str | None, tuple[int, ...], tuple[int, ...]], FloatArray] = (
            OrderedDict()
        )
        self._lock = threading.Lock()  # shared by conversations' threads: a hit's move_to_end races eviction
        self._rows: OrderedDict[int, FloatArray] = OrderedDict()
        self._penalties: OrderedDict[int, FloatArray] = OrderedDict()
        # Small vocabularies: every attribute row P_a·q_v up front (LastFM: 33 × 7,432).
        self._all_rows = (
            (self.attrs @ self.q.T).astype(np.float64) if graph.n_attributes * graph.n_items <= 4_000_000 else None
        )

    def user_vector(self, user: str | None) -> F32:
        i = self.user_index.get(user) if user is not None else None
        return self.users[i] if i is not None else self.mean_user

    def attribute_row(self, attr: int) -> FloatArray:
        """P_a·q_v for every item: the weight attribute ``a`` adds to each item when accepted."""
        if self._all_rows is not None:
            full: FloatArray = self._all_rows[attr]
            return full
        row = self._rows.get(attr)
        if row is None:
            row = (self.q @ self.attrs[attr]).astype(np.float64)
            with self._lock:
                self._rows[attr] = row
                while len(self._rows) > 4 * self._cache_size:
                    self._rows.popitem(last=False)
        return row

    def rejection_penalty(self, attr: int) -> FloatArray:
        """What a rejected attribute takes off every item (cached): max(0, P_a·q_v), plus
        ``no_penalty`` on the items having it for ``noisy``."""
        row = self._penalties.get(attr)
        if row is None:
            if self.rejection == "learned":  # what the learned N_r takes off: -N_r·q_v
                row = -(self.q @ self.rejects[attr]).astype(np.float64)
            else:
                row = np.maximum(self.attribute_row(attr), 0.0)
                if self.no_penalty:
                    row[self.graph.attr_items.row(attr)] += self.no_penalty
            with self._lock:
                self._penalties[attr] = row
                while len(self._penalties) > self._cache_size:
                    self._penalties.popitem(last=False)
        return row

    def base_scores(self, user: str | None) -> FloatArray:
        """u·q_v for every item, with the user's own items pushed last."""
        scores = (self.q @ self.user_vector(user)).astype(np.float64)
        if self.exclude_seen and user is not None:
            seen = self.graph.user_items.get(user)
            if seen is not None:
                scores[seen] -= self.seen_penalty
        return scores

    def full_scores(self, user: str | None, accepted: tuple[int, ...], rejected: tuple[int, ...]) -> FloatArray:
        """Scores of every item in one context (cached; built from a cached shorter context)."""
        key = (user, accepted, rejected)
        with self._lock:
            hit = self._contexts.get(key)
            if hit is not None:
                self._contexts.move_to_end(key)
        if hit is not None:
            return hit
        if (rejected and (user, accepted, rejected[:-1]) in self._contexts) or (rejected and not accepted):
            scores = self.full_scores(user, accepted, rejected[:-1]) - self.rejection_penalty(rejected[-1])
        elif accepted:
            scores = self.full_scores(user, accepted[:-1], rejected) + self.attribute_row(accepted[-1])
        elif rejected:
            scores = self.full_scores(user, accepted, rejected[:-1]) - self.rejection_penalty(rejected[-1])
        else:
            scores = self.base_scores(user)
        with self._lock:
            self._contexts[key] = scores
            while len(self._contexts) > self._cache_size:
                self._contexts.popitem(last=False)
        return scores

    def score(self, context: ScoringContext, items: IntArray) -> FloatArray:
        rejected = tuple(context.rejected.tolist()) if self.rejection != "none" else ()
        return self.full_scores(context.user, tuple(context.accepted.tolist()), rejected)[items]


# ------------------------------------------------------------------------- training
def _row_means(indptr: IntArray, indices: IntArray, table: F32) -> F32:
    """For each CSR row, the mean of ``table`` over its columns (zeros for empty rows)."""
    lengths = np.diff(indptr)
    out = np.zeros((len(lengths), table.shape[1]), dtype=table.dtype)
    nonempty = lengths > 0
    if len(indices):
        sums = np.add.reduceat(table[indices], indptr[:-1][nonempty], axis=0)
        out[nonempty] = sums / lengths[nonempty, None]
    return out


def _scatter_rows(index: IntArray, values: F32, n_rows: int) -> F32:
    """``out[index[i]] += values[i]`` for a dense (n_rows, dim) gradient, summing repeats
    (a sparse one-hot product: many times faster than ``np.add.at`` on rows)."""
    onehot = sparse.csr_matrix(
        (np.ones(len(index), dtype=values.dtype), (index, np.arange(len(index)))), shape=(n_rows, len(index))
    )
    return np.asarray(onehot @ values)


def _mean_matrix(indptr: IntArray, indices: IntArray, n_cols: int) -> sparse.csr_matrix:
    """The CSR rows as a sparse matrix whose row r averages the columns of r (weights 1/|r|)."""
    lengths = np.diff(indptr)
    data = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(lengths), n_cols))


class _Adam:
    def __init__(self, params: Sequence[F32], lr: float) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: Sequence[F32]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        scale = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= scale * m / (np.sqrt(v) + 1e-8)


def train_fm(
    graph: KnowledgeGraph,
    pairs: Sequence[tuple[str, str]],
    config: FMConfig | None = None,
    *,
    progress: Callable[[int, int, float], None] | None = None,
) -> FMModel:
    """Train on ``(user, item)`` pairs (the train split). ``progress(epoch, epochs, loss)``."""
    cfg = config or FMConfig.for_graph(graph)
    rng = np.random.default_rng(cfg.seed)
    started = time.perf_counter()
    user_ids = tuple(sorted({u for u, _ in pairs}, key=lambda s: (len(s), s)))
    uidx = {u: i for i, u in enumerate(user_ids)}
    pu = np.fromiter((uidx[u] for u, _ in pairs), np.int64, len(pairs))
    pv = np.fromiter((graph.item_index[i] for _, i in pairs), np.int64, len(pairs))
    n_u, n_i, n_a, d = len(user_ids), graph.n_items, graph.n_attributes, cfg.dim
    ia, ai = graph.item_attrs, graph.attr_items
    mean_rows = _mean_matrix(ia.indptr, ia.indices, n_a)
    ia_len = np.diff(ia.indptr)
    ai_len = np.diff(ai.indptr)
    if (ia_len[pv] == 0).any():
        raise ValueError("every interacted item needs at least one attribute")

    def init(rows: int) -> F32:
        return (rng.standard_normal((rows, d)) * 0.05).astype(np.float32)

    users, items, content, attrs = init(n_u), init(n_i), init(n_a), init(n_a)
    users[:, -1] = 1.0
    params = [users, items, content, attrs]
    n_rej = cfg.max_rejected
    rejects = np.zeros((n_a, d), dtype=np.float32) if n_rej else None
    if rejects is not None:
        params.append(rejects)
        rej_rng = np.random.default_rng([cfg.seed, 1])  # its own stream: the other draws stay as they were
        pair_keys = np.repeat(np.arange(n_i, dtype=np.int64), ia_len) * n_a + ia.indices  # sorted
    opt = _Adam(params, cfg.lr)
    n = len(pairs)
    loss = float("nan")
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, cfg.batch_size):
            b = order[start : start + cfg.batch_size]
            u, v = pu[b], pv[b]
            m = len(b)
            # Accepted-attribute context: k ∈ [1, max_context] distinct attributes of the target.
            k = rng.integers(1, cfg.max_context + 1, size=m)
            k = np.minimum(k, ia_len[v])
            ctx = np.full((m, cfg.max_context), -1, dtype=np.int64)
            for j in range(cfg.max_context):
                pos = ia.indptr[v] + rng.integers(0, ia_len[v])
                ctx[:, j] = np.where(j < k, ia.indices[pos], -1)
            # Repeats within a context are rare; keep only the first occurrence.
            for j in range(1, cfg.max_context):
                dup = (ctx[:, j][:, None] == ctx[:, :j]).any(axis=1)
                ctx[dup, j] = -1
            # Negatives: uniform, or among the items sharing the opening attribute.
            hard = rng.random(m) < cfg.hard_negatives
            first = ctx[:, 0]
            hard_neg = ai.indices[ai.indptr[first] + (rng.random(m) * ai_len[first]).astype(np.int64)]
            neg = np.where(hard, hard_neg, rng.integers(0, n_i, size=m))

            if rejects is not None:
                # Rejected context: attributes of a co-candidate w that the target lacks; w becomes
                # the negative of pairs that have one, so N_r learns to tell v from w.
                co = ai.indices[ai.indptr[first] + (rej_rng.random(m) * ai_len[first]).astype(np.int64)]
                rctx = np.full((m, n_rej), -1, dtype=np.int64)
                count = rej_rng.integers(0, n_rej + 1, size=m)
                for j in range(n_rej):
                    a = ia.indices[ia.indptr[co] + (rej_rng.random(m) * ia_len[co]).astype(np.int64)]
                    key = v * n_a + a
                    at = np.searchsorted(pair_keys, key).clip(0, len(pair_keys) - 1)
                    lacks = pair_keys[at] != key
                    rctx[:, j] = np.where((j < count) & lacks, a, -1)
                for j in range(1, n_rej):
                    dup = (rctx[:, j][:, None] == rctx[:, :j]).any(axis=1)
                    rctx[dup, j] = -1
                rvalid = rctx >= 0
                neg = np.where(rvalid.any(axis=1), co, neg)

            # q_v only for the batch's items (positives, then negatives), through the sparse
            # item→attribute mean: a pass over the whole catalog per batch is what made large
            # catalogs slow.
            rows = np.concatenate([v, neg])
            means = mean_rows[rows]
            q_rows = items[rows] + means @ content
            qp, qn = q_rows[:m], q_rows[m:]
            valid = ctx >= 0
            ctx_vec = users[u] + (attrs[np.where(valid, ctx, 0)] * valid[..., None]).sum(axis=1)
            if rejects is not None:
                ctx_vec = ctx_vec + (rejects[np.where(rvalid, rctx, 0)] * rvalid[..., None]).sum(axis=1)
            x = (ctx_vec * (qp - qn)).sum(axis=1)
            sig = 1.0 / (1.0 + np.exp(np.clip(x, -30, 30)))  # σ(-x) = d(-log σ(x))/d(-x)
            losses.append(float(np.logaddexp(0, -x).mean()))
            g = (-sig / m).astype(np.float32)[:, None]
            g_ctx = g * (qp - qn)
            g_q = np.concatenate([g * ctx_vec, -g * ctx_vec])  # dL/dq for each row
            g_items = _scatter_rows(rows, g_q, n_i)
            g_users = _scatter_rows(u, g_ctx, n_u)
            g_users[:, -1] = 0.0
            g_attrs = _scatter_rows(ctx[valid], np.repeat(g_ctx, valid.sum(axis=1), axis=0), n_a)
            # Back through the content mean: dC_c = Σ_{rows having c} dQ_row / |attrs(row)|.
            g_content = np.asarray(means.T @ g_q)
            grads = [g_users + cfg.reg * users, g_items + cfg.reg * items,
                     g_content + cfg.reg * content, g_attrs + cfg.reg * attrs]
            if rejects is not None:
                g_rej = _scatter_rows(rctx[rvalid], np.repeat(g_ctx, rvalid.sum(axis=1), axis=0), n_a)
                grads.append(g_rej + cfg.reg * rejects)
            opt.step(grads)
            users[:, -1] = 1.0
        loss = float(np.mean(losses))
        if progress is not None:
            progress(epoch + 1, cfg.epochs, loss)
    return FMModel(
        user_ids=user_ids, users=users, items=items, content=content, attrs=attrs, rejects=rejects,
        meta={
            "config": cfg.__dict__, "train_pairs": n, "final_loss": loss,
            "train_seconds": round(time.perf_counter() - started, 2),
            "n_items": n_i, "n_attributes": n_a,
        },
    )
