#!/usr/bin/env bash
# Train the audio emotion model that mmer ships in assets/models/audio-emodb/
# (see its README.md), so that users can predict without training anything.
#
# Same features (mmer-audio's 184 functionals), model (audio-only utterance
# MLP) and hyper-parameters as `mmer bench emodb-loso`'s default run, whose
# leave-one-speaker-out scores are in docs/RESULTS.md ("EmoDB,
# speaker-independent"). Here no speaker is left out for testing: seed 0
# draws 2 of EmoDB's 10 speakers to choose the epoch (early stopping on
# their weighted F1), and the other 8 train the model and give its z-score
# normalisation. The run is deterministic: the same data and mmer give the
# same files.
#
# The model directory is replaced whole; its README.md is kept. The JSON
# report (speakers, epoch, validation scores and confusion matrix) goes to
# stdout.
#
# Usage: scripts/train_shipped_audio.sh [EMODB_WAV_DIR] [OUT_DIR]
#   EMODB_WAV_DIR  EmoDB clips (default ../shared/data/emodb/wav)
#   OUT_DIR        model directory (default assets/models/audio-emodb)
set -euo pipefail
cd "$(dirname "$0")/.."

data=${1:-../shared/data/emodb/wav}
out=${2:-assets/models/audio-emodb}

cargo build --release -p mmer-cli >&2
target/release/mmer bench emodb-loso --data "$data" --seeds 0 --max-epochs 200 \
    --save-model "$out"
