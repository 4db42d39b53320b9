"""Training and evaluation time of the FM scorer against catalog size, on seeded synthetic catalogs.

    python benchmarks/fm_scaling.py --json benchmarks/out/fm_scaling.json --plot docs/fm_scaling.png

For each size it writes a synthetic catalog (``crs data synth``'s generator, seed 0) to a
temporary folder, loads it the way ``crs eval mcr --catalog`` does (leave-one-out splits),
trains the scorer on the train split (CPU seconds, BLAS on one thread) and runs ``best`` and
``maxent`` on ``--episodes`` test episodes (binary questions, strict rule, 15 turns, top-10).
The ``floor`` size is the catalog of the training floor: 16k items, 1.5k attributes, about
190k interactions, at most 60 s of CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crs.evals._blas import single_thread_blas

# name: (items, attributes, users, interactions, attributes per item)
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "20k": (2_000, 200, 2_000, 20_000, 8),
    "100k": (8_000, 800, 8_000, 100_000, 12),
    "floor": (16_000, 1_500, 12_000, 190_000, 30),
    "1M": (50_000, 3_000, 60_000, 1_000_000, 12),
}
FLOOR_SECONDS = 60.0


def measure(name: str, episodes: int, folder: Path) -> dict[str, Any]:
    from crs.evals.cli import run_mcr
    from crs.evals.data import load_benchmark_data
    from crs.kb.synth import synth_catalog, write_synth
    from crs.reasoning.fm import FMConfig, train_fm
    from crs.reasoning.policies import graph_pairs

    items, attributes, users, interactions, per_item = SIZES[name]
    made = synth_catalog(items=items, attributes=attributes, users=users, interactions=interactions, seed=0,
                         attrs_per_item=per_item)
    catalog, inter = write_synth(made, folder, name)
    started = time.process_time()
    data = load_benchmark_data(catalog=catalog, interactions=inter)
    load_seconds = time.process_time() - started
    config = FMConfig.for_graph(data.graph)
    pairs = graph_pairs(data.graph)
    started = time.process_time()
    model = train_fm(data.graph, pairs, config)
    train_seconds = time.process_time() - started
    row: dict[str, Any] = {
        "size": name, "items": items, "attributes": attributes, "users": users,
        "interactions": len(made.interactions), "train_pairs": len(pairs), "epochs": config.epochs,
        "batch_size": config.batch_size, "load_cpu_seconds": round(load_seconds, 2),
        "train_cpu_seconds": round(train_seconds, 2),
    }
    if name == "floor":
        row["floor_seconds"] = FLOOR_SECONDS
        row["floor_met"] = train_seconds <= FLOOR_SECONDS
    for policy in ("best", "maxent"):
        result = run_mcr(data, policy, episodes=episodes, seed=0, no_rule="strict", max_turns=15, topk=10,
                         split="test", model=model, show_progress=False)
        row[policy] = {k: result[k] for k in ("SR@15", "AT", "hDCG", "episodes", "episodes_per_sec",
                                              "episodes_per_sec_wall")}
        row[policy]["eval_cpu_seconds"] = round(result["episodes"] / result["episodes_per_sec"], 2)
    return row


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["interactions"])
    x = [r["interactions"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [r["train_cpu_seconds"] for r in rows], "o-", label="training (CPU s)")
    ax.plot(x, [r["best"]["eval_cpu_seconds"] for r in rows], "s-",
            label=f"evaluation, best ({rows[0]['best']['episodes']} episodes, CPU s)")
    for r in rows:
        ax.annotate(r["size"], (r["interactions"], r["train_cpu_seconds"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.axhline(FLOOR_SECONDS, color="grey", linestyle=":", label="training floor (60 s)")
    ax.set_xscale("log")
    ax.set_xlabel("interactions (synthetic catalogs, seed 0)")
    ax.set_ylabel("CPU seconds, one core")
    ax.set_title("FM scorer: training and evaluation time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20k,100k,floor,1M")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    single_thread_blas()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes.split(","):
            row = measure(name, args.episodes, Path(tmp))
            row["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
            print(f"{name:6s} {row['interactions']:>9,} interactions  train {row['train_cpu_seconds']:6.1f} s CPU "
                  f"({row['epochs']} epochs)  best SR@15 {row['best']['SR@15']:.3f} AT {row['best']['AT']:.2f} "
                  f"{row['best']['episodes_per_sec']:.0f} eps/s  maxent SR@15 {row['maxent']['SR@15']:.3f} "
                  f"AT {row['maxent']['AT']:.2f}", flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if args.plot is not None:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
