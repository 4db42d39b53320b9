"""How long `crs chat` takes to give its first reply: a first start (the scorer is trained) and a later one.

    python benchmarks/first_start.py --data-dir ../shared/data --json benchmarks/out/first_start.json

Each case runs ``crs chat --json`` as a user would, in a fresh process with its own state
folder, sends one message and reads the reply; it is started twice with the same state folder
(the first start trains and caches the scorer when the catalog has interactions; the second
loads it). Wall-clock and CPU seconds (the child's user + system time) of the whole process are
printed, and, in this process, how long loading the cached model alone takes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import write_json  # benchmarks/ is on the path when a script runs


def start(args: list[str], home: Path) -> dict[str, Any]:
    env = {**os.environ, "HOME": str(home), "CRS_HOME": str(home / "crs")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "crs.cli", "chat", "--json", *args], input="rock\n",
                          capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    reply = json.loads(done.stdout.splitlines()[0])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "trained": "training the scorer" in done.stderr,
            "engine_notice": [line for line in done.stderr.splitlines() if line.startswith("crs: training")],
            "first_reply_action": reply["action"]}


def model_load_seconds(home: Path, graph_args: dict[str, Any]) -> float:
    """Seconds to load the cached model of a catalog, the part a later start adds."""
    from crs.api import load_knowledge
    from crs.model_cache import cached_model
    from crs.settings import Settings

    settings = Settings(state_dir=home / "crs", **graph_args)
    graph, _ = load_knowledge(settings)
    started = time.perf_counter()
    cached_model(graph, settings.state_dir)
    return round(time.perf_counter() - started, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases = {
        "bundled catalog (no interactions)": ([], None),
        "LastFM": (["--dataset", "lastfm", "--data-dir", str(args.data_dir)],
                   {"dataset": "lastfm", "data_dir": args.data_dir}),
    }
    report = []
    for name, (cli_args, graph_args) in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            first, later = start(cli_args, home), start(cli_args, home)
            row = {"case": name, "command": "crs chat --json " + " ".join(cli_args), "first_start": first,
                   "later_start": later}
            if graph_args is not None:
                row["model_load_seconds"] = model_load_seconds(home, graph_args)
            report.append(row)
            print(f"{name:34s} first start {first['wall_seconds']:6.1f} s wall / {first['cpu_seconds']:5.1f} s CPU"
                  f" (trained: {first['trained']});  later {later['wall_seconds']:5.1f} s wall / "
                  f"{later['cpu_seconds']:5.1f} s CPU;  model load {row.get('model_load_seconds', '-')} s",
                  flush=True)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
