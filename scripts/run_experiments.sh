#!/usr/bin/env bash
# Reproduces the text-only runs of docs/RESULTS.md: MELD and IEMOCAP, frozen
# MiniLM / MPNet sentence embeddings, utterance-only vs AMuSE context (and the
# full AMuSE path with text alone), 5 seeds,
# model selection on the validation split. Each run's results.json is copied
# to docs/results/<name>.json.
#
# Usage: scripts/run_experiments.sh [name ...]   (default: all, in order)
# Needs: scripts/setup.sh done; ../shared/data present. MMER overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
mmer="${MMER:-target/release/mmer}"
common=(--seeds 0,1,2,3,4 --max-epochs 40)

run() {
    local name=$1; shift
    run_with "$name" "${common[@]}" "$@"
}

# A run with its own epochs and seeds (the fine-tuning rows: their config's
# schedule decays to 0 at its last epoch; 3 seeds, 26 min each on MELD).
run_with() {
    local name=$1; shift
    echo "== $name: $mmer train $* --out runs/$name" >&2
    # --force: a rerun replaces the row's earlier run (swapped in only once
    # every seed has finished, so an interrupted rerun keeps the old one).
    "$mmer" train "$@" --out "runs/$name" --force
    mkdir -p docs/results
    cp "runs/$name/results.json" "docs/results/$name.json"
}

iemocap=(--dataset iemocap --data ../shared/data/iemocap/iemocap.pkl)
iemocap_ses4=("${iemocap[@]}" --valid-prefix Ses04)

all=(meld-minilm-context meld-minilm-utterance iemocap-minilm-context iemocap-minilm-utterance
     meld-mpnet-context iemocap-mpnet-context meld-mpnet-utterance iemocap-mpnet-utterance
     meld-mpnet-context-balanced meld-mpnet-context-ce iemocap-mpnet-context-amuse meld-mpnet-context-amuse meld-mpnet-tokens
     meld-mpnet-layer8 meld-mpnet-layer8-utterance iemocap-mpnet-layer8 meld-mpnet-layers
     meld-mpnet-layer8-amuse iemocap-mpnet-layer8-amuse meld-mpnet-layer8-amuse-256 iemocap-mpnet-layer8-amuse-256
     meld-mpnet-layer8-concat iemocap-mpnet-layer8-concat meld-mpnet-layer8-amuse-rezero iemocap-mpnet-layer8-amuse-rezero
     meld-mpnet-layer8-amuse-rezero-dropout iemocap-mpnet-layer8-amuse-rezero-dropout
     meld-mpnet-layer8-amuse-rezero-256 iemocap-mpnet-layer8-amuse-rezero-256
     iemocap-ses4-mpnet-layer8 iemocap-ses4-mpnet-layer8-concat iemocap-ses4-mpnet-layer8-amuse
     iemocap-ses4-mpnet-layer8-amuse-rezero iemocap-ses4-mpnet-layer8-amuse-rezero-dropout
     iemocap-ses4-mpnet-layer8-amuse-rezero-256
     meld-mpnet-layer8-am2emoje iemocap-mpnet-layer8-am2emoje iemocap-ses4-mpnet-layer8-am2emoje
     iemocap-ses4-mpnet-layer8-am2emoje-256
     meld-mpnet-layer8-context meld-mpnet-layer8-context-utterance iemocap-mpnet-layer8-context
     meld-mpnet-layer8-finetune-top2 iemocap-mpnet-layer8-finetune-top2 iemocap-mpnet-layer8-frozen-b4-e6
     iemocap-mpnet-layer8-finetune-top2-e12 iemocap-mpnet-layer8-frozen-b4-e12
     meld-mpnet-layer8-finetune-top4 meld-mpnet-layer8-finetune-top2-dp2)
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${all[@]}")

for name in "${selected[@]}"; do
    case "$name" in
        meld-minilm-context) run "$name" --dataset meld --data ../shared/data/meld --encoder minilm --context dialogue-speaker ;;
        meld-minilm-utterance) run "$name" --dataset meld --data ../shared/data/meld --encoder minilm --context none ;;
        iemocap-minilm-context) run "$name" "${iemocap[@]}" --encoder minilm --context dialogue-speaker ;;
        iemocap-minilm-utterance) run "$name" "${iemocap[@]}" --encoder minilm --context none ;;
        meld-mpnet-context) run "$name" --dataset meld --data ../shared/data/meld --encoder mpnet --context dialogue-speaker ;;
        iemocap-mpnet-context) run "$name" "${iemocap[@]}" --encoder mpnet --context dialogue-speaker ;;
        meld-mpnet-utterance) run "$name" --dataset meld --data ../shared/data/meld --encoder mpnet --context none ;;
        iemocap-mpnet-utterance) run "$name" "${iemocap[@]}" --encoder mpnet --context none ;;
        meld-mpnet-context-balanced) run "$name" --config docs/configs/meld-mpnet-balanced.toml ;;
        meld-mpnet-context-ce) run "$name" --config docs/configs/meld-mpnet-ce.toml ;;
        # Text only through the AMuSE path (encoder → MAN → AF → context).
        iemocap-mpnet-context-amuse) run "$name" "${iemocap[@]}" --encoder mpnet --context dialogue-speaker --fusion man-af ;;
        meld-mpnet-context-amuse) run "$name" --dataset meld --data ../shared/data/meld --encoder mpnet --context dialogue-speaker --fusion man-af ;;
        # MPNet token states with trainable attention pooling instead of the sentence vector.
        meld-mpnet-tokens) run "$name" --config docs/configs/meld-mpnet-tokens.toml ;;
        # Mean-pooled states of MPNet's 8th layer (chosen on the validation split by
        # scripts/probe_mpnet_layers.py), or of all 13 layers mixed by attention pooling.
        meld-mpnet-layer8) run "$name" --config docs/configs/meld-mpnet-layer8.toml ;;
        meld-mpnet-layer8-utterance) run "$name" --config docs/configs/meld-mpnet-layer8.toml --context none ;;
        iemocap-mpnet-layer8) run "$name" --config docs/configs/meld-mpnet-layer8.toml "${iemocap[@]}" ;;
        meld-mpnet-layers) run "$name" --config docs/configs/meld-mpnet-layers.toml ;;
        # Layer 8 through the AMuSE path (encoder → MAN → AF → context).
        meld-mpnet-layer8-amuse) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion man-af ;;
        iemocap-mpnet-layer8-amuse) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion man-af "${iemocap[@]}" ;;
        # The same with the modality encoder as wide as the foundation's projection (256).
        meld-mpnet-layer8-amuse-256) run "$name" --config docs/configs/meld-mpnet-layer8-amuse.toml ;;
        iemocap-mpnet-layer8-amuse-256) run "$name" --config docs/configs/meld-mpnet-layer8-amuse.toml "${iemocap[@]}" ;;
        # The modality encoder without MAN, and MAN with ReZero residuals (starts as the identity).
        meld-mpnet-layer8-concat) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion concat ;;
        iemocap-mpnet-layer8-concat) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion concat "${iemocap[@]}" ;;
        meld-mpnet-layer8-amuse-rezero) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion man-af --man-residual rezero ;;
        iemocap-mpnet-layer8-amuse-rezero) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion man-af --man-residual rezero "${iemocap[@]}" ;;
        # ReZero + dropout on the frozen text vector before the modality encoder.
        meld-mpnet-layer8-amuse-rezero-dropout) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero.toml ;;
        iemocap-mpnet-layer8-amuse-rezero-dropout) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero.toml "${iemocap[@]}" ;;
        meld-mpnet-layer8-amuse-rezero-256) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero-256.toml ;;
        iemocap-mpnet-layer8-amuse-rezero-256) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero-256.toml "${iemocap[@]}" ;;
        # IEMOCAP validated on session 4 (speakers unseen in training, like the
        # test speakers of session 5) instead of the pickle's validation dialogues.
        iemocap-ses4-mpnet-layer8) run "$name" --config docs/configs/meld-mpnet-layer8.toml "${iemocap_ses4[@]}" ;;
        iemocap-ses4-mpnet-layer8-concat) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion concat "${iemocap_ses4[@]}" ;;
        iemocap-ses4-mpnet-layer8-amuse) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion man-af "${iemocap_ses4[@]}" ;;
        iemocap-ses4-mpnet-layer8-amuse-rezero) run "$name" --config docs/configs/meld-mpnet-layer8.toml --fusion man-af --man-residual rezero "${iemocap_ses4[@]}" ;;
        iemocap-ses4-mpnet-layer8-amuse-rezero-dropout) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero.toml "${iemocap_ses4[@]}" ;;
        iemocap-ses4-mpnet-layer8-amuse-rezero-256) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero-256.toml "${iemocap_ses4[@]}" ;;
        # Text alone through AM²-EmoJE (issue 15): with one modality its joint
        # space has nothing to align or impute, and the fusion passes the
        # descriptor through; the AMuSE-path settings above otherwise.
        meld-mpnet-layer8-am2emoje) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero.toml --fusion am2-emoje ;;
        iemocap-mpnet-layer8-am2emoje) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero.toml --fusion am2-emoje "${iemocap[@]}" ;;
        iemocap-ses4-mpnet-layer8-am2emoje) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero.toml --fusion am2-emoje "${iemocap_ses4[@]}" ;;
        iemocap-ses4-mpnet-layer8-am2emoje-256) run "$name" --config docs/configs/meld-mpnet-layer8-amuse-rezero-256.toml --fusion am2-emoje "${iemocap_ses4[@]}" ;;
        # Issue 17: the conversation in the frozen encoder's input (past 3,
        # future 1, speaker names), with and without the Bi-LSTM context.
        meld-mpnet-layer8-context) run "$name" --config docs/configs/meld-mpnet-layer8-context.toml ;;
        meld-mpnet-layer8-context-utterance) run "$name" --config docs/configs/meld-mpnet-layer8-context.toml --context none ;;
        iemocap-mpnet-layer8-context) run "$name" --config docs/configs/meld-mpnet-layer8-context.toml "${iemocap[@]}" ;;
        # Issue 17: MPNet's layers 7-8 fine-tuned with the model (6 epochs;
        # MELD 5 seeds, IEMOCAP 3), and the frozen model on IEMOCAP's fine-tuning schedule
        # (batches of 4 dialogues, 6 epochs) for a paired comparison.
        meld-mpnet-layer8-finetune-top2) run_with "$name" --config docs/configs/meld-mpnet-layer8-finetune-top2.toml --seeds 0,1,2,3,4 ;;
        # Layers 5–8 instead of 7–8 (the same schedule and rates; seeds 0–1).
        meld-mpnet-layer8-finetune-top4) run_with "$name" --config docs/configs/meld-mpnet-layer8-finetune-top2.toml --set train.finetune.layers=4 --seeds 0,1 ;;
        # The top-2 run with each batch on two threads (seeds 0–1).
        meld-mpnet-layer8-finetune-top2-dp2) run_with "$name" --config docs/configs/meld-mpnet-layer8-finetune-top2.toml --set train.data_parallel=2 --seeds 0,1 ;;
        iemocap-mpnet-layer8-finetune-top2) run_with "$name" --config docs/configs/iemocap-mpnet-layer8-finetune-top2.toml --seeds 0,1,2 ;;
        iemocap-mpnet-layer8-frozen-b4-e6) run_with "$name" --config docs/configs/meld-mpnet-layer8.toml "${iemocap[@]}" --set train.batch_size=4 --set train.patience=6 --max-epochs 6 --seeds 0,1,2 ;;
        iemocap-mpnet-layer8-finetune-top2-e12) run_with "$name" --config docs/configs/iemocap-mpnet-layer8-finetune-top2.toml --set train.max_epochs=12 --set train.patience=12 --seeds 0,1 ;;
        iemocap-mpnet-layer8-frozen-b4-e12) run_with "$name" --config docs/configs/meld-mpnet-layer8.toml "${iemocap[@]}" --set train.batch_size=4 --set train.patience=12 --max-epochs 12 --seeds 0,1 ;;
        *) echo "unknown experiment $name" >&2; exit 2 ;;
    esac
done
