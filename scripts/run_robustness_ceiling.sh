#!/usr/bin/env bash
# How much of each missing-modality condition can any model recover? For every
# condition of the thesis's table (T+A, T+V, A+V, No Face, No Body) this trains
# AMuSE (docs/configs/synthetic-redundant-amuse.toml, 5 seeds, selected on
# validation) on that condition's modalities only, in training as at test: a
# model made for the condition, which never has to cope with a missing input.
# Its test score is the reference a model trained on every modality and
# tested without some can hope to approach (docs/RESULTS.md, issue 15).
# Deterministic: a rerun gives the same numbers on the same machine.
#
#   scripts/run_robustness_ceiling.sh   # runs/redundant-ceiling/, docs/results/robustness-redundant-ceiling.json
#   JOBS=2 scripts/run_robustness_ceiling.sh   # two trainings at a time
set -euo pipefail
cd "$(dirname "$0")/.."
MMER=${MMER:-target/release/mmer}
RUNS=${RUNS:-runs/redundant-ceiling}
JOBS=${JOBS:-1}
[ -x "$MMER" ] || cargo build --release --bin mmer
train() { # name modalities
  local name=$1 modalities=$2
  [ -f "$RUNS/$name/results.json" ] && return 0
  "$MMER" train --config docs/configs/synthetic-redundant-amuse.toml --out "$RUNS/$name" \
    --resume --modalities "$modalities" > "$RUNS/$name.log" 2>&1
}
mkdir -p "$RUNS"
{ train text_audio text,audio
  train text_face_body text,face,body
  train text_audio_body text,audio,body; } &
[ "$JOBS" -gt 1 ] || wait
{ train audio_face_body audio,face,body
  train text_audio_face text,audio,face; } &
wait
mkdir -p docs/results
"$MMER" robustness "$RUNS/text_audio" "$RUNS/text_face_body" "$RUNS/audio_face_body" \
  "$RUNS/text_audio_body" "$RUNS/text_audio_face" \
  --rates 0 --out docs/results/robustness-redundant-ceiling.json
