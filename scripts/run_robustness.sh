#!/usr/bin/env bash
# Robustness to missing modalities (issue 15): trains early fusion, feature
# concatenation and AMuSE on the synthetic conversations with the committed
# config (docs/configs/synthetic-amuse.toml, seeds 0-2), then scores each with
# modalities removed at test time (`mmer robustness`: each modality and pair
# removed, missing-rate sweep 0.0-0.7, 3 draws) and draws the sweeps on one
# chart. Deterministic: rerunning gives the same numbers on the same machine.
#
#   scripts/run_robustness.sh            # runs/robustness/, docs/results/robustness.{json,svg}
set -euo pipefail
cd "$(dirname "$0")/.."
MMER=${MMER:-target/release/mmer}
RUNS=${RUNS:-runs/robustness}
SEEDS=${SEEDS:-0,1,2}
[ -x "$MMER" ] || cargo build --release --bin mmer
for fusion in early concat man_af; do
  if [ ! -f "$RUNS/$fusion/results.json" ]; then
    "$MMER" train --config docs/configs/synthetic-amuse.toml --fusion "$fusion" \
      --seeds "$SEEDS" --out "$RUNS/$fusion" --resume
  fi
done
mkdir -p docs/results
"$MMER" robustness "$RUNS/early" "$RUNS/concat" "$RUNS/man_af" \
  --out docs/results/robustness.json --plot docs/results/robustness.svg
