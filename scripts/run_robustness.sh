#!/usr/bin/env bash
# Missing modalities (issue 15) on the redundant synthetic setting (every
# modality also carries the class alone; crates/mmer-data/src/synthetic.rs):
# trains early fusion and AMuSE on complete turns, AMuSE with modality
# dropout, and AM²-EmoJE (docs/configs/synthetic-redundant-*.toml, 5 seeds
# each, selected on validation), then scores each with modalities removed at
# test time (`mmer robustness`: each modality and pair removed, a missing-rate
# sweep 0.0-0.7 with 3 draws) and draws the sweeps on one chart.
# Deterministic: a rerun gives the same numbers on the same machine.
#
#   scripts/run_robustness.sh      # runs/redundant/, docs/results/robustness-redundant.{json,svg}
#   JOBS=1 scripts/run_robustness.sh   # one training process at a time
set -euo pipefail
cd "$(dirname "$0")/.."
MMER=${MMER:-target/release/mmer}
RUNS=${RUNS:-runs/redundant}
JOBS=${JOBS:-2}
[ -x "$MMER" ] || cargo build --release --bin mmer
train() { # name config [flags...]
  local name=$1 config=$2
  shift 2
  [ -f "$RUNS/$name/results.json" ] && return 0
  "$MMER" train --config "docs/configs/$config" --out "$RUNS/$name" --resume "$@" \
    > "$RUNS/$name.log" 2>&1
}
mkdir -p "$RUNS"
{ train man_af synthetic-redundant-amuse.toml
  train early synthetic-redundant-amuse.toml --fusion early; } &
[ "$JOBS" -gt 1 ] || wait
{ train am2_emoje synthetic-redundant-am2emoje.toml
  train man_af_dropout synthetic-redundant-amuse-dropout.toml; } &
wait
mkdir -p docs/results
"$MMER" robustness "$RUNS/early" "$RUNS/man_af" "$RUNS/man_af_dropout" "$RUNS/am2_emoje" \
  --out docs/results/robustness-redundant.json --plot docs/results/robustness-redundant.svg
