"""The memory evaluation that talks like a person: ``crs eval memory --protocol person``.

Each simulated user states a favourite attribute once, in session 1 ("I love F, it's my
favourite"). Every session's target is drawn from the items having F; each later session opens
with another attribute of its target, without restating F. Answers and rejections are about
the current target only (the MCR simulator, :class:`crs.evals.simulator.SimulatedUser`). Some
users change their mind in a session of a single message ("I'm done with F now"); their later
targets lack F. Everything runs through the public :class:`crs.Recommender` with a real
Chroma store and SQLite checkpoints, as a person would use it.

Warm is the returning user; cold is a new user with the same opening and target. Reported:
SR@15 and AT of both on sessions 2 and later; ``drift_respected`` (after a change of mind, no
list holds F, F weighs nothing in the prior, and no reply claims it is liked);
``invented_preferences`` (reply claims not backed by a statement or a choice:
:func:`crs.evals.claims.unbacked_claims`); ``repeats`` (past choices recommended again unasked).
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from crs.evals.claims import unbacked_claims
from crs.evals.simulator import SimulatedUser

__all__ = ["run_person_eval"]

MAX_TURNS = 15
TOP_K = 10
RULE = "strict"


@dataclass(frozen=True)
class _Plan:
    user: str
    favourite: str  # attribute id
    targets: tuple[str, ...]
    openings: tuple[str, ...]  # session 1 opens with the favourite itself
    drift_after: int | None = None  # the one-message "done with F" session comes after this session


@dataclass
class _Person:
    said: dict[str, str] = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)  # item ids
    chosen_names: list[str] = field(default_factory=list)



def _without_names(text: str, shown: Sequence[str], chosen: Sequence[str]) -> str:
    """``text`` without the names of the items it shows (an item's name is no claim about the
    person), except inside the names of past choices, which a reason may cite and the claims
    check must see whole.

    >>> _without_names("1. Mos Def (like Mos Def & Magoo, which you chose before)", ["Mos Def"], ["Mos Def & Magoo"])
    '1.  (like Mos Def & Magoo, which you chose before)'
    """
    for name in shown:
        kept = [c for c in chosen if name in c]
        parts = re.split("(" + "|".join(re.escape(c) for c in sorted(kept, key=len, reverse=True)) + ")",
                         text) if kept else [text]
        text = "".join(p if p in kept else p.replace(name, "") for p in parts)
    return text

def _plans(graph: Any, users: int, sessions: int, seed: int, drift_share: float) -> list[_Plan]:
    rng = random.Random(seed)
    sizes = np.diff(graph.attr_items.indptr)
    # a favourite worth having: at least a few dozen items, at most a fifth of the catalog
    favourites = [a for a in range(graph.n_attributes) if 30 <= sizes[a] <= graph.n_items // 5]
    plans = []
    for u in range(users):
        fav = rng.choice(favourites)
        with_fav = graph.attr_items.row(fav).tolist()
        drift = rng.random() < drift_share and sessions >= 3
        drift_after = rng.randint(1, sessions - 2) if drift else None
        targets: list[str] = []
        openings: list[str] = []
        for s in range(sessions):
            if drift_after is not None and s > drift_after:
                pool = [i for i in rng.sample(range(graph.n_items), 200) if fav not in graph.item_attrs.row(i)]
            else:
                pool = with_fav
            item = rng.choice([i for i in pool if graph.item_ids[i] not in targets] or pool)
            targets.append(graph.item_ids[item])
            attrs = [a for a in graph.item_attrs.row(item).tolist() if a != fav]
            opening = fav if s == 0 or not attrs else rng.choice(attrs)
            openings.append(graph.attr_ids[opening])
        plans.append(_Plan(f"person-{seed}-{u}", graph.attr_ids[fav], tuple(targets), tuple(openings), drift_after))
    return plans


def _action_of(reply: Any) -> Any:
    """The engine's action a reply shows, for the MCR simulator to answer."""
    from crs.reasoning.state import Action, Recommendation

    if reply.action == "ask" and reply.question is not None:
        return Action(kind="ask", attribute=reply.question.attribute, options=tuple(reply.question.option_ids[1:]))
    if reply.action == "recommend":
        return Action(kind="recommend", recommendations=tuple(
            Recommendation(item_id=r.id, name=r.name, path=tuple(r.path), score=0.0) for r in reply.recommendations))
    return Action(kind=reply.action)


def _episode(rec: Any, user: str, session: str, target: str, opening: str, person: _Person | None,
             statement: str | None) -> dict[str, Any]:
    """One search: the opening (a statement in text, or the attribute as a button), then the
    simulator answers until the target is listed or the budget runs out."""
    g = rec.graph
    sim = SimulatedUser(g, user, target)
    shown: list[str] = []
    texts: list[str] = []
    if statement is not None:
        reply = rec.chat(user, session, statement)
        state = rec.state(user, session)
        if state is None or opening not in state.accepted:
            reply = rec.act(user, session, {"type": "attributes", "accept": [opening]})
    else:
        reply = rec.act(user, session, {"type": "attributes", "accept": [opening]})
    success = None
    for turn in range(1, MAX_TURNS + 1):
        said = _without_names(reply.text, [r.name for r in reply.recommendations],
                              person.chosen_names if person is not None else ())
        texts += [said, *(r.why for r in reply.recommendations)]
        shown += [r.id for r in reply.recommendations]
        if reply.action not in ("ask", "recommend"):
            reply = rec.act(user, session, {"type": "recommend_now"})
            continue
        answer = sim.answer(_action_of(reply))
        if answer.accepted:
            success = turn
            reply = rec.act(user, session, {"type": "accept_item", "item_id": target})
            texts.append(reply.text)
            break
        if reply.action == "ask":
            reply = rec.act(user, session, {"type": "answer", "yes": bool(answer.feedback.accept_attributes)})
        else:
            reply = rec.act(user, session, {"type": "reject_items", "item_ids": list(answer.feedback.reject_items)})
    out: dict[str, Any] = {"turn": success, "shown": shown}
    if person is not None:
        out["unbacked"] = unbacked_claims(texts, person.said, person.chosen_names)
        out["repeats"] = len(set(shown) & set(person.chosen))
        if success is not None:
            person.chosen.append(target)
            person.chosen_names.append(g.item_names[g.item_index[target]])
    return out


def _metrics(turns: list[int | None]) -> dict[str, float]:
    n = len(turns)
    at = sum(t if t is not None else MAX_TURNS for t in turns) / n if n else float("nan")
    return {"SR@15": round(sum(t is not None for t in turns) / n, 4) if n else float("nan"),
            "AT": round(at, 4), "episodes": n}


@lru_cache(maxsize=4)
def _world(data_dir: str, dataset: str, strategy: str | None) -> tuple[Any, Any]:
    """The dataset's graph and the engine's scorer (loaded once per process)."""
    from crs import Settings
    from crs.api import load_scorer
    from crs.kb.scpr import load_scpr
    from crs.reasoning.policy import PolicySettings

    g = load_scpr(data_dir, dataset).graph
    settings = Settings(strategy=strategy, policy=PolicySettings(top_k=TOP_K, no_rule=RULE))
    return g, load_scorer(settings, g)


def run_person_eval(
    dataset: str = "lastfm", data_dir: str | Path = "../shared/data", users: int = 100, sessions: int = 4,
    seed: int = 0, *, drift_share: float = 0.3, strategy: str | None = "best", use_reranker: bool = True,
    profile: Any | None = None, workdir: str | Path | None = None, prior_m: int | None = None,
    episodes: bool = False, prior_fade: float | None = None,
) -> dict[str, Any]:
    """Run the person protocol (see the module doc) and return the JSON-ready result.

    ``prior_fade`` overrides ``PolicySettings.prior_fade`` (how much less memory weighs after
    each rejected list). ``episodes`` adds each returning session's success turn (None: not found), warm and cold, in
    plan order, so two runs on the same plans can be compared episode by episode."""
    from crs import Recommender, Settings
    from crs.memory import MemorySettings, ProfileSettings, ReflectiveMemory, RerankerSettings
    from crs.reasoning.policy import PolicySettings

    g, scorer = _world(str(data_dir), dataset, strategy)
    profile = profile or ProfileSettings()
    policy = PolicySettings(top_k=TOP_K, no_rule=RULE, **({} if prior_fade is None else {"prior_fade": prior_fade}))
    base = Path(tempfile.mkdtemp(prefix="crs-person-eval-", dir=workdir))
    try:
        settings = Settings(state_dir=base, embeddings=False, strategy=strategy, policy=policy,
                            memory_settings=MemorySettings(
                                use_reranker=use_reranker, seed=seed, profile=profile,
                                reranker=RerankerSettings(prior_m=prior_m) if prior_m else RerankerSettings()))
        memory = ReflectiveMemory.open(base / "memory", graph=g, settings=settings.memory_settings, degrade=False)
        rec = Recommender(g, scorer=scorer, memory=memory, settings=settings)
        plans = _plans(g, users, sessions, seed, drift_share)
        warm: list[int | None] = []
        cold: list[int | None] = []
        unbacked: list[str] = []
        repeats = drift_ok = drift_total = 0
        t0 = time.perf_counter()
        for plan in plans:
            fav_value = g.attributes[g.attr_index[plan.favourite]].value
            person = _Person(said={fav_value.lower(): "like"})
            statement = f"I love {fav_value}, it's my favourite"
            for s, (target, opening) in enumerate(zip(plan.targets, plan.openings, strict=True)):
                first = s == 0
                out = _episode(rec, plan.user, f"s{s}", target, opening, person, statement if first else None)
                unbacked += out["unbacked"]
                repeats += out["repeats"]
                if plan.drift_after is not None and s > plan.drift_after:
                    drift_total += 1
                    prior = dict(rec.state(plan.user, f"s{s}").prior)  # type: ignore[union-attr]
                    fav = g.attr_index[plan.favourite]
                    fav_shown = any(fav in g.item_attrs.row(g.item_index[i]) for i in out["shown"])
                    drift_ok += int(prior.get(plan.favourite, 0.0) <= 0 and not fav_shown)
                if first:
                    continue
                warm.append(out["turn"])
                cold.append(_episode(rec, f"{plan.user}-cold-{s}", "c", target, opening, None, None)["turn"])
                if plan.drift_after == s:  # the change of mind: a session of one message, never closed
                    rec.chat(plan.user, f"drift{s}", f"I'm done with {fav_value} now")
                    person.said[fav_value.lower()] = "dislike"
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(base, ignore_errors=True)
    w, c = _metrics(warm), _metrics(cold)
    result: dict[str, Any] = {
        "protocol": "person", "dataset": dataset, "users": len(plans), "sessions": sessions, "seed": seed,
        "engine": strategy or "popularity", "no_rule": RULE, "max_turns": MAX_TURNS, "top_k": TOP_K,
        "drift_share": drift_share, "drifting_users": sum(p.drift_after is not None for p in plans),
        "reranker": use_reranker, "prior_m": settings.memory_settings.reranker.prior_m,
        "prior_fade": policy.prior_fade,
        "profile_settings": profile.model_dump(),
        "warm": w, "cold": c, "AT_ratio": round(w["AT"] / c["AT"], 4) if c["AT"] else None,
        "drift_respected": round(drift_ok / drift_total, 4) if drift_total else None, "drift_sessions": drift_total,
        "invented_preferences": len(unbacked), "invented_examples": unbacked[:5], "repeats": repeats,
        "seconds": round(seconds, 1),
    }
    # the same opening and target, warm against cold: which found it where the other did not
    result["paired"] = {"warm_only": sum(x is not None and y is None for x, y in zip(warm, cold, strict=True)),
                        "cold_only": sum(x is None and y is not None for x, y in zip(warm, cold, strict=True)),
                        "neither": sum(x is None and y is None for x, y in zip(warm, cold, strict=True))}
    if episodes:
        result.update(warm_turns=warm, cold_turns=cold)
    result["floors"] = {
        "warm_sr_at_least_cold": w["SR@15"] >= c["SR@15"],
        "warm_at_at_most_0.9_cold": bool(result["AT_ratio"] is not None and result["AT_ratio"] <= 0.9),
        "drift_respected_1.0": result["drift_respected"] == 1.0 if drift_total else None,
        "no_invented_preferences": len(unbacked) == 0,
    }
    return result
