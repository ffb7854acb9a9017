#!/usr/bin/env bash
# Multi-label (issue 16) on the synthetic multi-label clips: SeMuL-PCD, the
# BCE concat baseline (same encoders, pooled and concatenated, plain binary
# cross-entropy) and SeMuL-PCD's ablations, 5 seeds each, selected on the
# validation macro F1 at 0.5 (docs/configs/synthetic-multilabel-semul.toml
# plus --set overrides). Then ElderReact's audio statistics: SeMuL-PCD on
# audio alone (its audio peer and fusion head) and the concat baseline.
# Deterministic: a rerun gives the same numbers on the same machine.
#
#   scripts/run_multilabel.sh          # runs/multilabel/
#   JOBS=1 scripts/run_multilabel.sh   # one training process at a time
# Last, SeMuL-PCD with modality dropout and `mmer robustness` of it, SeMuL-PCD
# and the concat baseline: docs/results/robustness-multilabel.{json,svg}.
set -euo pipefail
cd "$(dirname "$0")/.."
MMER=${MMER:-target/release/mmer}
RUNS=${RUNS:-runs/multilabel}
JOBS=${JOBS:-2}
ELDERREACT=${ELDERREACT:-../shared/data/elderreact}
[ -x "$MMER" ] || cargo build --release --bin mmer
train() { # name config [flags...]
  local name=$1 config=$2
  shift 2
  [ -f "$RUNS/$name/results.json" ] && return 0
  "$MMER" train --config "docs/configs/$config" --out "$RUNS/$name" --resume "$@" \
    > "$RUNS/$name.log" 2>&1
}
SEMUL=synthetic-multilabel-semul.toml
PEERS=train.model.peers
mkdir -p "$RUNS"
{ train semul "$SEMUL"
  train semul_no_calibration "$SEMUL" --set $PEERS.calibration_weight=0
  train semul_no_nce "$SEMUL" --set $PEERS.nce_weight=0; } &
[ "$JOBS" -gt 1 ] || wait
{ train concat_bce "$SEMUL" --fusion concat
  train semul_no_distill "$SEMUL" --set $PEERS.distill_weight=0
  train semul_shared "$SEMUL" --set $PEERS.share_layers=true; } &
wait
if [ -d "$ELDERREACT" ]; then
  ELDER=(--dataset elder-react --data "$ELDERREACT" --modalities audio)
  { train elderreact_semul "$SEMUL" "${ELDER[@]}"; } &
  [ "$JOBS" -gt 1 ] || wait
  { train elderreact_concat "$SEMUL" "${ELDER[@]}" --fusion concat; } &
  wait
else
  echo "no ElderReact data at $ELDERREACT: skipping its rows" >&2
fi
# Sensitivity of the calibration weight (1.0 above, 0 in the ablation):
# 0.1 and 0.3, to pick a weight on the validation macro F1.
{ train semul_calibration_0.1 "$SEMUL" --set $PEERS.calibration_weight=0.1; } &
[ "$JOBS" -gt 1 ] || wait
{ train semul_calibration_0.3 "$SEMUL" --set $PEERS.calibration_weight=0.3; } &
wait
# Missing modalities at test time (`mmer robustness`, macro F1 at 0.5):
# SeMuL-PCD, SeMuL-PCD trained with modality dropout 0.3 and the concat
# baseline, each modality and pair removed, and the missing-rate sweep on
# one chart.
train semul_md03 "$SEMUL" --set train.model.modality_dropout=0.3
mkdir -p docs/results
"$MMER" robustness "$RUNS/concat_bce" "$RUNS/semul" "$RUNS/semul_md03" \
  --out docs/results/robustness-multilabel.json --plot docs/results/robustness-multilabel.svg
