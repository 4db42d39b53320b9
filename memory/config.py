"""Settings of long-term memory, importable without the store (settings files read them).

Unknown keys are errors, never ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MemorySettings", "ProfileSettings", "RerankerSettings"]


class ProfileSettings(BaseModel):
    """How evidence becomes prior weights. The best values depend on the catalog's vocabulary.

    The defaults were tuned on the LastFM *valid* split (33 coarse tags; 150 users, 5 sessions,
    ``evals.memory.tune_profile_settings`` with an in-memory store): AT ratio memory-on/off
    0.781 at the defaults; on LastFM the positive weights barely matter (like_scale 0: 0.786)
    and negative evidence does the work, since under the strict "no" rule the engine does not
    prune rejected attributes and a remembered dislike is the only soft pruning it gets. With
    a fine-grained vocabulary a remembered "yes" says much more and strong dislikes over-prune:
    LastFM* (8,438 tags) is best at like_scale = dislike_scale = 1 (0.677 against 0.845 at the
    defaults; see ``evals.memory.TUNED_PROFILES``). Tune on your own catalog's valid split.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    smoothing: float = Field(0.1, gt=0, description="pseudo-count pulling p towards the base rate")
    like_scale: float = Field(0.5, ge=0, description="multiplier of positive weights (logits)")
    dislike_scale: float = Field(4.0, ge=0, description="multiplier of negative weights (logits)")
    explicit_boost: float = Field(3.0, ge=1, description="unused; kept so older settings files still load")
    stated_like: float = Field(3.0, ge=0, description="prior weight of a stated like (added to choices' weight)")
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
