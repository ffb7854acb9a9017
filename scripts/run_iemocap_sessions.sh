#!/usr/bin/env bash
# IEMOCAP text-only, leave one session out: five folds, fold k tests session k
# (two speakers), early-stops on session k + 1 (two more unseen speakers) and
# trains on the other three; 5 seeds per fold. The standard split tests only
# session 5, and its validation dialogues share their speakers with training;
# this protocol tests every speaker once and validates on unseen ones.
#
# Usage: scripts/run_iemocap_sessions.sh [row ...]   (default: foundation amuse-rezero-dropout)
#   rows: foundation (MPNet layer 8, the foundation model),
#         amuse-rezero-dropout (the AMuSE path with text alone,
#         docs/configs/meld-mpnet-layer8-amuse-rezero.toml),
#         amuse-rezero-256 (the same, d = 256), amuse-rezero, concat,
#         amuse (post-norm), am2emoje (the AM²-EmoJE path with text alone,
#         the amuse-rezero-dropout config with --fusion am2-emoje), am2emoje-256
# Writes runs/iemocap-sessions/<row>/fold-<k>/ and prints the summary table
# (scripts/iemocap_sessions_table.py), which also goes to
# docs/results/iemocap-sessions.json (rows already there are kept).
# Needs: scripts/setup.sh done; ../shared/data present. MMER overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
mmer="${MMER:-target/release/mmer}"
[ -x "$mmer" ] || cargo build --release --bin mmer
data=(--dataset iemocap --data ../shared/data/iemocap/iemocap.pkl)

rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(foundation amuse-rezero-dropout)
for row in "${rows[@]}"; do
    case "$row" in
        foundation) args=(--config docs/configs/meld-mpnet-layer8.toml) ;;
        amuse-rezero-dropout) args=(--config docs/configs/meld-mpnet-layer8-amuse-rezero.toml) ;;
        amuse-rezero-256) args=(--config docs/configs/meld-mpnet-layer8-amuse-rezero-256.toml) ;;
        amuse-rezero) args=(--config docs/configs/meld-mpnet-layer8.toml --fusion man-af --man-residual rezero) ;;
        concat) args=(--config docs/configs/meld-mpnet-layer8.toml --fusion concat) ;;
        amuse) args=(--config docs/configs/meld-mpnet-layer8.toml --fusion man-af) ;;
        am2emoje) args=(--config docs/configs/meld-mpnet-layer8-amuse-rezero.toml --fusion am2-emoje) ;;
        am2emoje-256) args=(--config docs/configs/meld-mpnet-layer8-amuse-rezero-256.toml --fusion am2-emoje) ;;
        *) echo "unknown row $row" >&2; exit 2 ;;
    esac
    for k in 1 2 3 4 5; do
        valid=$(( k % 5 + 1 ))
        out="runs/iemocap-sessions/$row/fold-$k"
        echo "== $row fold $k: test Ses0$k, valid Ses0$valid" >&2
        "$mmer" train "${args[@]}" "${data[@]}" --test-prefix "Ses0$k" --valid-prefix "Ses0$valid" \
            --seeds 0,1,2,3,4 --max-epochs 40 --resume --out "$out"
    done
done
mkdir -p docs/results
python3 scripts/iemocap_sessions_table.py runs/iemocap-sessions docs/results/iemocap-sessions.json
