"""Settings of long-term memory, importable without the store (settings files read them).

Unknown keys are errors, never ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MemorySettings", "ProfileSettings", "RerankerSettings"]


class ProfileSettings(BaseModel):
    """How evidence becomes prior weights. The best values depend on the catalog's vocabulary.

    Stated preferences add ``stated_like`` / ``-stated_dislike``. Choices are weak evidence:
    the attributes of chosen items push up by ``like_scale`` × log-odds, and (with
    ``implicit_negatives``) the attributes they lack push down by ``dislike_scale`` × log-odds.
    The defaults were chosen with the person protocol (``crs eval memory --protocol person``,
    LastFM, ``best``, 20 users, 4 sessions, seed 11; warm/cold AT): dislike_scale 0.5 gave 0.754,
    4.0 (the old default, tuned when answers were remembered) 0.875, no implicit negatives 0.941;
    then stated_like 5 against 3 (50 users, seed 0): warm SR@15 0.847 against 0.827 (cold 0.833),
    AT ratio 0.768 against 0.792. With ``best`` = fm-noisy (a stronger cold start) the choices'
    weights were halved to 0.25: at 0.5 a returning person found fewer targets than a new one
    (person protocol, 30 users, seed 11, LastFM*: warm SR@15 0.978 against cold 0.989; at 0.25:
    1.0). Tune on your own catalog.

    ``item_weight`` adds the neighbours of past choices (items other people chose with them) as
    an item term; it is off: on the SCPR protocol's valid splits it changed AT by −0.11 to +0.05
    turns (``benchmarks/out/memory_tune_*.jsonl``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    smoothing: float = Field(0.1, gt=0, description="pseudo-count pulling p towards the base rate")
    like_scale: float = Field(0.25, ge=0, description="multiplier of positive weights (logits)")
    dislike_scale: float = Field(0.25, ge=0, description="multiplier of negative weights (logits)")
    explicit_boost: float = Field(3.0, ge=1, description="unused; kept so older settings files still load")
    stated_like: float = Field(5.0, ge=0, description="prior weight of a stated like (added to choices' weight)")
    stated_dislike: float = Field(6.0, ge=0, description="prior weight against a stated dislike")
    established_sessions: int = Field(
        2, ge=1, description="choices in this many different sessions must share an attribute before it is a like")
    half_life_days: float = Field(180.0, gt=0, description="evidence halves in weight after this long")
    max_weight: float = Field(8.0, gt=0, description="cap on |weight| so memory never acts as a filter")
    max_prior: int = Field(256, ge=0, description="keep the strongest weights only")
    min_weight: float = Field(0.05, ge=0, description="drop weights smaller than this")
    implicit_negatives: bool = Field(
        True, description="an accepted item without attribute a is weak evidence against a"
    )
    retire_on_change_of_mind: bool = Field(
        True, description="a choice made before the person said they are done with one of its attributes is "
        "no evidence any more (still an item chosen before)")
    item_weight: float = Field(
        0.0, ge=0, description="prior weight of the best neighbour of past choices (items chosen together; 0: off)")
    item_neighbours: int = Field(100, ge=0, description="neighbours of past choices that get an item weight")


class RerankerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(8, ge=1, le=512, description="rank of each residual adapter")
    top_k: int = Field(20, ge=1, description="K: memories retrieved by similarity")
    sample_m: int = Field(5, ge=1, description="M: memories kept of the K (sampled) for a reply's prompt")
    prior_m: int = Field(8, ge=1, description="preference memories kept of the K for a session's prior")
    temperature: float = Field(0.1, gt=0, description="softmax temperature of the sampling")
    learning_rate: float = Field(0.05, gt=0)
    baseline_decay: float = Field(0.9, ge=0, lt=1, description="running-mean reward baseline")
    max_grad_norm: float = Field(1.0, gt=0)
    init_scale: float = Field(0.1, gt=0, description="scale of the random V at start")


class MemorySettings(BaseModel):
    """Settings of long-term memory. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reflect_every: int = Field(8, ge=0, description="reflect after every N turns of a session (0: off)")
    merge_threshold: float = Field(0.9, gt=0, le=1, description="cosine above which memories merge")
    token_budget: int = Field(300, ge=0, description="tokens of memory text given to generation")
    encoding: str = Field("cl100k_base", description="tiktoken encoding for budgets")
    use_reranker: bool = True
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    reranker: RerankerSettings = Field(default_factory=RerankerSettings)
    seed: int = 0
