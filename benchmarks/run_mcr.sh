#!/usr/bin/env bash
# The full MCR numbers of benchmarks/RESULTS.md: train the scorer once per dataset, then run
# every policy on 4,000 test episodes (seed 0, 15 turns, top-10) under the strict rule, and
# the same under the prune rule for reference. One heavy job at a time.
# Usage: bash benchmarks/run_mcr.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-benchmarks/out}
CLI=${CRS_CLI:-python -m crs.evals.cli}
mkdir -p "$OUT" docs
POLICIES=maxent,scpr,fm-bounded,best,filter
for ds in lastfm lastfm_star; do
  # trains on the train split, tunes best's settings (T, c, answer noise) on 1,000 valid episodes, stores them
  $CLI train scorer --dataset "$ds" --data-dir "$DATA" --out "$OUT/fm_$ds.npz" --json "$OUT/train_$ds.json" \
    | tee "$OUT/train_$ds.txt"
  for rule in strict prune; do
    $CLI eval mcr --dataset "$ds" --data-dir "$DATA" --model "$OUT/fm_$ds.npz" --episodes 4000 --seed 0 \
      --max-turns 15 --topk 10 --no-rule "$rule" --compare "$POLICIES" \
      --json "$OUT/mcr_${ds}_${rule}.json" --table "$OUT/mcr_${ds}_${rule}.md" --plot "docs/mcr_${ds}_${rule}.png"
  done
done
