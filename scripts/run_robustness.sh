#!/usr/bin/env bash
# Missing modalities (issue 15) on the redundant synthetic setting (every
# modality also carries the class alone; crates/mmer-data/src/synthetic.rs):
# trains early fusion and AMuSE on complete turns, AMuSE with modality
# dropout, AM²-EmoJE and its ablations (docs/configs/synthetic-redundant-*.toml
# plus --set overrides, 5 seeds each, selected on validation), then scores
# each with modalities removed at test time (`mmer robustness`: each modality
# and pair removed, a missing-rate sweep 0.0-0.7 with 3 draws) and draws the
# sweeps of the main rows on one chart. scripts/run_robustness_ceiling.sh adds
# the reference of models trained on each condition's modalities.
# Deterministic: a rerun gives the same numbers on the same machine.
#
#   scripts/run_robustness.sh      # runs/redundant/, docs/results/robustness-redundant*.{json,svg}
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
AM2=synthetic-redundant-am2emoje.toml
JOINT=train.model.joint
mkdir -p "$RUNS"
# Two queues of about equal length, one per core, the main rows first.
{ train man_af synthetic-redundant-amuse.toml
  train man_af_dropout synthetic-redundant-amuse-dropout.toml
  train am2_no_impute "$AM2" --set $JOINT.impute=false
  train am2_global "$AM2" --set $JOINT.query_adaptive=false
  train am2_body_face "$AM2" --set $JOINT.positives=body_guided_face
  train am2_md05 "$AM2" --set train.model.modality_dropout=0.5; } &
[ "$JOBS" -gt 1 ] || wait
{ train early synthetic-redundant-amuse.toml --fusion early
  train am2_emoje "$AM2"
  train am2_no_nce "$AM2" --set $JOINT.nce_weight=0
  train am2_same_label "$AM2" --set $JOINT.positives=same_label
  train am2_aligned "$AM2" --set $JOINT.align_descriptors=true; } &
wait
mkdir -p docs/results
"$MMER" robustness "$RUNS/am2_emoje" "$RUNS/am2_no_nce" "$RUNS/am2_no_impute" \
  "$RUNS/am2_global" "$RUNS/am2_same_label" "$RUNS/am2_body_face" "$RUNS/am2_aligned" \
  "$RUNS/am2_md05" --rates 0 --out docs/results/robustness-redundant-ablation.json
"$MMER" robustness "$RUNS/early" "$RUNS/man_af" "$RUNS/man_af_dropout" "$RUNS/am2_emoje" \
  --out docs/results/robustness-redundant.json --plot docs/results/robustness-redundant.svg
