#!/usr/bin/env bash
# Trains the text model that ships in assets/models/text-meld-minilm: the AMuSE
# dialogue + speaker context model on MELD transcripts with frozen MiniLM
# sentence embeddings, seed 0, the default hyper-parameters (the
# `meld-minilm-context` row of docs/RESULTS.md), selected on MELD's validation
# split. Needs ../shared/data/meld and `scripts/setup.sh` (MiniLM weights).
# Deterministic: the same machine kernels give the same checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin mmer
./target/release/mmer train --dataset meld --data ../shared/data/meld \
    --encoder minilm --context dialogue-speaker --seeds 0 \
    --out runs/shipped-text-meld-minilm --force
mkdir -p assets/models/text-meld-minilm
cp runs/shipped-text-meld-minilm/seed-0/{checkpoint.json,model.bpk,metrics.json} \
    assets/models/text-meld-minilm/
echo "shipped text model: assets/models/text-meld-minilm"
