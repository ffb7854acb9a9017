#!/usr/bin/env bash
# The AMuSE ablation of docs/RESULTS.md on the built-in synthetic multimodal
# conversations: unimodal rows, early fusion, feature concatenation, MAN +
# concat, MAN + Adaptive Fusion (AMuSE), each fusion with and without the
# dialogue + speaker context, AMuSE started from cross-modal NCE
# pre-training, AMuSE with per-modality focal heads (Eq. 5), also from
# the pre-trained weights (the heads start fresh), and AMuSE with ReZero
# residuals in MAN. 5 seeds,
# model selection on the validation split.
#
# Every (row, seed) is its own process, JOBS at a time (default: nproc), and
# skips seeds already finished in OUT (`mmer train --resume`), so an
# interrupted run — or one split across machines — continues where it
# stopped. Each row's finished seeds are then merged into one results.json,
# copied to docs/results/synthetic-<row>.json.
#
# Usage: scripts/run_synthetic_ablation.sh [row ...]   (default: all rows)
# Env:   MMER (binary, default target/release/mmer), JOBS, SEEDS (default 0 1 2 3 4),
#        RUNS (default runs/synthetic), RESULTS (default docs/results),
#        EXTRA (flags added to every train command, e.g. "--max-epochs 2" for a smoke test),
#        CONFIG (default docs/configs/synthetic-amuse.toml), MERGE_ONLY=1 (train nothing; merge the seeds that finished)
set -euo pipefail
cd "$(dirname "$0")/.."
export MMER="${MMER:-target/release/mmer}" RAYON_NUM_THREADS=1
jobs="${JOBS:-$(nproc)}"
seeds=(${SEEDS:-0 1 2 3 4})
out="${RUNS:-runs/synthetic}"
results="${RESULTS:-docs/results}"
export EXTRA="${EXTRA:-}"
config="${CONFIG:-docs/configs/synthetic-amuse.toml}"
all_modalities=text,audio,face,body

flags() {
    case "$1" in
        text | audio | face | body) echo "--modalities $1 --fusion concat" ;;
        early) echo "--modalities $all_modalities --fusion early" ;;
        concat | man-concat | man-af) echo "--modalities $all_modalities --fusion $1" ;;
        concat-utterance | man-concat-utterance | man-af-utterance)
            echo "--modalities $all_modalities --fusion ${1%-utterance} --context none" ;;
        man-af-nce) echo "--modalities $all_modalities --fusion man-af --init-from $out/man-af-nce-pretrain" ;;
        man-af-modes) echo "--modalities $all_modalities --fusion man-af --mode-heads" ;;
        man-af-rezero) echo "--modalities $all_modalities --fusion man-af --man-residual rezero" ;;
        man-af-nce-modes) echo "--modalities $all_modalities --fusion man-af --mode-heads --init-from $out/man-af-nce-pretrain" ;;
        *) echo "unknown row $1" >&2; return 2 ;;
    esac
}

all=(man-af-nce man-af-nce-modes man-af man-af-modes man-af-rezero man-concat man-af-utterance man-concat-utterance concat concat-utterance
     early text audio face body)
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=("${all[@]}")

one() { # row seed
    local row=$1 seed=$2
    mkdir -p "$out/$row"
    if [[ "$row" = man-af-nce* ]] && [ ! -f "$out/man-af-nce-pretrain/seed-$seed/model.bpk" ]; then
        "$MMER" pretrain --config "$config" $(flags man-af) --seeds "$seed" \
            --out "$out/man-af-nce-pretrain" --resume >"$out/$row/pretrain-$seed.log" 2>&1
    fi
    "$MMER" train --config "$config" $(flags "$row") $EXTRA --seeds "$seed" --out "$out/$row" \
        --resume >>"$out/$row/seed-$seed.log" 2>&1 && echo "done $row seed $seed" >&2
}
export -f one flags
export out config all_modalities

for row in "${rows[@]}"; do flags "$row" >/dev/null; done
if [ -z "${MERGE_ONLY:-}" ]; then
    for row in "${rows[@]}"; do for seed in "${seeds[@]}"; do echo "$row $seed"; done; done |
        xargs -P "$jobs" -L 1 bash -c 'one "$0" "$1"' || echo "some seeds failed; see $out/*/seed-*.log" >&2
fi

mkdir -p "$results"
for row in "${rows[@]}"; do
    done_seeds=()
    for seed in "${seeds[@]}"; do
        [ -f "$out/$row/seed-$seed/metrics.json" ] && done_seeds+=("$seed")
    done
    if [ ${#done_seeds[@]} -eq 0 ]; then
        echo "$row: no finished seed" >&2
        continue
    fi
    [ ${#done_seeds[@]} -eq ${#seeds[@]} ] || echo "$row: only seeds ${done_seeds[*]} finished" >&2
    if "$MMER" train --config "$config" $(flags "$row") $EXTRA --seeds "$(IFS=,; echo "${done_seeds[*]}")" \
        --out "$out/$row" --resume >"$out/$row/merge.log" 2>&1; then
        cp "$out/$row/results.json" "$results/synthetic-$row.json"
    else
        echo "merging $row failed; see $out/$row/merge.log" >&2
    fi
done
