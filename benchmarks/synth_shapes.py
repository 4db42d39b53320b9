"""`best` against `maxent` on synthetic catalogs of different shapes, with per-catalog tuning.

    python benchmarks/synth_shapes.py --json benchmarks/out/synth_shapes.json

For each shape it writes a seeded synthetic catalog (``crs data synth``), then does what a user
does: ``crs train scorer`` (train split; tunes best's settings on the valid split and stores
them with the model), then ``crs eval mcr --compare maxent,best`` on the test split (binary
questions, strict rule, 15 turns, top-10). The floor: best's SR@15 at least maxent's minus
0.02, and a lower AT.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _report import write_json  # benchmarks/ is on the path when a script runs
from typer.testing import CliRunner

from crs.evals.cli import app

# name: synth arguments
SHAPES: dict[str, list[str]] = {
    "few-attrs-skewed": ["--items", "3000", "--attributes", "300", "--users", "2000", "--interactions", "30000",
                         "--attrs-per-item", "4", "--skew", "1.2"],
    "few-attrs-flat": ["--items", "3000", "--attributes", "300", "--users", "2000", "--interactions", "30000",
                       "--attrs-per-item", "4", "--skew", "0"],
    "many-attrs-skewed": ["--items", "3000", "--attributes", "600", "--users", "2000", "--interactions", "30000",
                          "--attrs-per-item", "30", "--skew", "1.2"],
    "many-attrs-flat": ["--items", "3000", "--attributes", "600", "--users", "2000", "--interactions", "30000",
                        "--attrs-per-item", "30", "--skew", "0"],
}


def run(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.output}")
    return result.output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            folder = Path(tmp) / shape
            run(["data", "synth", "--out", str(folder), "--seed", "0", *SHAPES[shape]])
            catalog, interactions = folder / "synth.jsonl", folder / "synth.interactions.csv"
            model, train_json, rows_json = folder / "fm.npz", folder / "train.json", folder / "rows.json"
            run(["train", "scorer", "--catalog", str(catalog), "--interactions", str(interactions),
                 "--out", str(model), "--json", str(train_json)])
            run(["eval", "mcr", "--catalog", str(catalog), "--interactions", str(interactions), "--model", str(model),
                 "--compare", "maxent,best", "--episodes", str(args.episodes), "--seed", "0", "--questions", "binary",
                 "--json", str(rows_json), "--table", str(folder / "t.md"), "--plot", str(folder / "p.png")])
            trained = json.loads(train_json.read_text())
            rows = {r["policy"]: r for r in json.loads(rows_json.read_text())}
            best, maxent = rows["best"], rows["maxent"]
            entry = {
                "shape": shape, "synth_args": SHAPES[shape], "seed": 0, "episodes": best["episodes"],
                "train_cpu_seconds": trained["train_cpu_seconds"], "tuned": trained["tuned"]["settings"],
                "valid": trained["tuned"]["valid"],
                "best": {k: best[k] for k in ("SR@5", "SR@10", "SR@15", "AT", "hDCG", "episodes_per_sec")},
                "maxent": {k: maxent[k] for k in ("SR@5", "SR@10", "SR@15", "AT", "hDCG", "episodes_per_sec")},
            }
            entry["floor_met"] = best["SR@15"] >= maxent["SR@15"] - 0.02 and best["AT"] < maxent["AT"]
            report.append(entry)
            print(f"{shape:18s} best SR@15 {best['SR@15']:.3f} AT {best['AT']:.2f}  maxent SR@15 "
                  f"{maxent['SR@15']:.3f} AT {maxent['AT']:.2f}  tuned {entry['tuned']}  floor "
                  f"{'met' if entry['floor_met'] else 'NOT met'}", flush=True)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
