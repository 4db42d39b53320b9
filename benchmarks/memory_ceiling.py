"""How far session memory can go on the SCPR protocol under the evidence rules:
``python benchmarks/memory_ceiling.py > benchmarks/out/memory_ceiling.json``.

Reads the committed ``memory_scpr_<dataset>_<engine>.json`` runs (each with the whole-history
reference at its own settings, tuned on the valid split, on the same returning sessions) and
works out, for each dataset and engine, an upper bound on what memory of the simulated
sessions could save:

- a returning session whose memory holds no chosen item has nothing memory may use (answers to
  one search's questions are never lasting evidence; the SCPR user states nothing, and the
  drifting users' statements are in both arms), so at best it takes memory-off turns;
- a session with at least one chosen item remembered does, at best, as well as the better of
  memory and the whole history on those same sessions.

The bound's saving over memory off, next to the whole history's, says whether a floor can be
reached at all with this engine and this much evidence, whatever the profile settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def ceiling(run: dict) -> dict:
    """The bound for one committed SCPR run."""
    ev = run["evidence"]["by_evidence"]
    off = run["AT"]["memory_off"]
    none, some = ev.get("no_choice_remembered"), ev.get("choices_remembered")
    n = (none["episodes"] if none else 0) + (some["episodes"] if some else 0)
    total = (none["episodes"] * none["memory_off"] if none else 0.0)
    if some:
        total += some["episodes"] * min(some["memory_on"], some["history"])
    bound_at = total / n
    history = run["history_reference"]["turn_reduction"]
    bound = 1 - bound_at / off
    out = {
        "dataset": run["dataset"], "engine": run["engine"], "users": run["users"], "seed": run["seed"],
        "prior_fade": run.get("prior_fade"), "returning_sessions": n,
        "share_without_choice": round((none["episodes"] if none else 0) / n, 4),
        "first_session_SR@15_memory_off": run["first_session"]["memory_off"]["SR@15"],
        "AT_off": off, "AT_on": run["AT"]["memory_on"], "saving": run["turn_reduction"],
        "bound_AT": round(bound_at, 4), "bound_saving": round(bound, 4),
        "history_saving": history, "share": run["share_of_history_saving"],
        "bound_share": round(bound / history, 4) if history > 0 else None,
    }
    if run["dataset"] == "lastfm":
        out["floor"] = "memory >= 0.9 x the whole history's saving"
        out["floor_reachable_under_bound"] = bound >= 0.9 * history
    else:
        out["floor"] = "memory saves >= 25% of turns"
        out["floor_reachable_under_bound"] = bound >= 0.25
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    rows = []
    for dataset in ("lastfm", "lastfm_star"):
        for engine in ("popularity", "best"):
            path = args.out_dir / f"memory_scpr_{dataset}_{engine}.json"
            if not path.is_file():
                continue
            run = json.loads(path.read_text(encoding="utf-8"))
            rows.append(ceiling(run))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
