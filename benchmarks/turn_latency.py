"""Per-turn latency on LastFM*: the engine step alone, and a whole graph turn with its checkpoint.

    python benchmarks/turn_latency.py --data-dir ../shared/data [--dataset lastfm_star] [--episodes 200]

A simulated user (the CPR protocol: opens with one attribute of a target item, answers yes
exactly when the target has the attribute, rejects lists without it) drives the conversation.
Prints medians and p95s in milliseconds; no thresholds are checked here.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from crs import AnswerQuestion, ChooseAttributes, PolicySettings, Recommender, RejectItems, Settings
from crs.kb import load_scpr
from crs.reasoning.engine import Engine
from crs.reasoning.state import Feedback


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--dataset", default="lastfm_star", choices=["lastfm", "lastfm_star"])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    start = time.perf_counter()
    ds = load_scpr(args.data_dir, args.dataset)
    _ = ds.graph.nx_graph
    print(f"{args.dataset}: load + graph build {time.perf_counter() - start:.2f}s "
          f"({ds.graph.n_items} items, {ds.graph.n_attributes} attributes)")
    g = ds.graph
    rng = random.Random(args.seed)
    pairs = rng.sample(ds.splits["test"], args.episodes)
    policy = PolicySettings(top_k=10, no_rule="soft")

    # 1) the engine step: feedback → next action
    engine = Engine(g, settings=policy)
    step_ms: list[float] = []
    for user, target in pairs:
        t = g.item(target)
        target_attrs = {g.attr_ids[a] for a in g.item_attrs.row(t)}
        state = engine.start(user)
        feedback = Feedback(accept_attributes=(rng.choice(sorted(target_attrs)),))
        for _ in range(15):
            t0 = time.perf_counter()
            state = engine.apply(state, feedback)
            action = engine.decide(state)
            state = engine.record(state, action)
            step_ms.append((time.perf_counter() - t0) * 1000)
            if action.kind == "ask" and action.attribute is not None:
                asked = action.attribute
                yes = asked in target_attrs
                feedback = Feedback(accept_attributes=(asked,)) if yes else Feedback(reject_attributes=(asked,))
            elif action.kind == "recommend":
                ids = tuple(r.item_id for r in action.recommendations)
                if target in ids:
                    break
                feedback = Feedback(reject_items=ids)
            else:
                break

    # 2) a whole graph turn through the public API, SQLite checkpoint included
    turn_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recommender(g, engine=engine, settings=Settings(state_dir=Path(tmp), policy=policy))
        for n, (user, target) in enumerate(pairs):
            t = g.item(target)
            target_attrs = {g.attr_ids[a] for a in g.item_attrs.row(t)}
            session = f"s{n}"
            t0 = time.perf_counter()
            reply = rec.act(user, session, ChooseAttributes(accept=[rng.choice(sorted(target_attrs))]))
            turn_ms.append((time.perf_counter() - t0) * 1000)
            for _ in range(14):
                if reply.action == "ask":
                    assert reply.question is not None
                    answer: AnswerQuestion | RejectItems = AnswerQuestion(
                        yes=reply.question.attribute in target_attrs)
                elif reply.action == "recommend":
                    shown = [r.id for r in reply.recommendations]
                    if target in shown:
                        break
                    answer = RejectItems(item_ids=shown)
                else:
                    break
                t0 = time.perf_counter()
                reply = rec.act(user, session, answer)
                turn_ms.append((time.perf_counter() - t0) * 1000)

    for name, values in (("engine step", step_ms), ("graph turn (with checkpoint)", turn_ms)):
        print(f"{name:30s} n={len(values):5d}  p50 {statistics.median(values):7.2f} ms  "
              f"p95 {percentile(values, 0.95):7.2f} ms")


if __name__ == "__main__":
    main()
