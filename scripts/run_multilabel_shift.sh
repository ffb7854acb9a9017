#!/usr/bin/env bash
# Cross-dataset between the synthetic multi-label sets (issue 16): SeMuL-PCD
# trained on the default clips (runs/multilabel/semul, scripts/run_multilabel.sh)
# and on the shifted ones (docs/configs/synthetic-multilabel-shifted.toml:
# the same planted world, noisier and longer clips, stronger speaker
# offsets), each scored on the other's test split through the identity map
# docs/label-maps/synthetic-multi-identity.toml. The in-domain rows are each
# run's own test scores (results.json). Deterministic.
#
#   scripts/run_multilabel_shift.sh    # runs/multilabel/shifted_semul, eval-map-*.json in both runs
set -euo pipefail
cd "$(dirname "$0")/.."
MMER=${MMER:-target/release/mmer}
RUNS=${RUNS:-runs/multilabel}
MAP=docs/label-maps/synthetic-multi-identity.toml
[ -x "$MMER" ] || cargo build --release --bin mmer
[ -f "$RUNS/semul/results.json" ] || { echo "run scripts/run_multilabel.sh first" >&2; exit 1; }
[ -f "$RUNS/shifted_semul/results.json" ] ||
  "$MMER" train --config docs/configs/synthetic-multilabel-shifted.toml --out "$RUNS/shifted_semul" --resume \
    > "$RUNS/shifted_semul.log" 2>&1
"$MMER" eval "$RUNS/semul" --on docs/configs/synthetic-multilabel-shifted.toml --label-map "$MAP"
"$MMER" eval "$RUNS/shifted_semul" --on docs/configs/synthetic-multilabel-semul.toml --label-map "$MAP"
