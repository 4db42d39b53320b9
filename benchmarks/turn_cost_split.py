"""Where a turn's CPU goes in one process, without HTTP: the turn's own steps against the whole
graph turn (LangGraph's run, its checkpoint, the transcript log), memory off, bundled catalog.

    python benchmarks/turn_cost_split.py [--conversations 100] [--repeat 5] [--out benchmarks/out/turn_cost_split.json]

Both loops run the same five-message conversations (a genre and decade, no, yes, "just recommend
something", "why the first one?"), in this process, one after the other; CPU time per turn, the
median of ``--repeat`` rounds. The steps alone are called in the graph's order on a dict state.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _conversation import lines
from _report import write_json

from crs import Recommender, Settings


def cpu_ms_per_turn(run: Callable[[int], None], conversations: int, repeat: int, offset: int) -> list[float]:
    rounds = []
    for r in range(repeat):
        start = time.process_time()
        for n in range(conversations):
            run(offset + r * conversations + n)
        rounds.append((time.process_time() - start) * 1000 / (conversations * 5))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rec = Recommender.from_settings(Settings(state_dir=Path(tempfile.mkdtemp(prefix="crs-split-")), memory=False))
    steps = rec.steps

    def whole(n: int) -> None:
        for text in lines(n):
            rec.chat(f"u{n}", "s", text)

    def steps_only(n: int) -> None:
        state: dict[str, object] = {"user_id": f"v{n}", "session_id": "s", "transcript": []}
        for text in lines(n):
            state.update({"message": text, "feedback": None})
            for step in (steps.recall, steps.understand, steps.reason, steps.decide):
                state.update(step(state))  # type: ignore[arg-type]
            if steps.route(state) != "respond":  # type: ignore[arg-type]
                state.update(steps.record(state))  # type: ignore[arg-type]
            state.update(steps.respond(state))  # type: ignore[arg-type]

    for n in range(20):  # warm-up: caches, lazy loads
        whole(n)
        steps_only(n)
    graph = cpu_ms_per_turn(whole, args.conversations, args.repeat, 1000)
    alone = cpu_ms_per_turn(steps_only, args.conversations, args.repeat, 1000)
    result = {
        "command": "python benchmarks/turn_cost_split.py " + " ".join(sys.argv[1:]),
        "turns_per_round": args.conversations * 5,
        "whole_turn_cpu_ms": round(statistics.median(graph), 3),
        "steps_alone_cpu_ms": round(statistics.median(alone), 3),
        "around_the_steps_cpu_ms": round(statistics.median(graph) - statistics.median(alone), 3),
        "rounds": {"whole_turn": [round(x, 3) for x in graph], "steps_alone": [round(x, 3) for x in alone]},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(result, indent=2))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
