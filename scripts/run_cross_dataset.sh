#!/usr/bin/env bash
# Cross-dataset evaluation (issue 16, item 4): the text-only MPNet layer-8
# AM²-EmoJE runs of MELD and IEMOCAP (5 seeds each) scored on each other's
# test split through the label maps under docs/label-maps/, beside each
# corpus's own run scored on its own test split through the same map (the
# in-domain reference: the same turns, the same comparison classes).
#
#   rows                     model run   data          map
#   MELD → IEMOCAP           MELD        IEMOCAP run   meld-to-iemocap
#   IEMOCAP → IEMOCAP        IEMOCAP     its own       meld-to-iemocap (target side)
#   IEMOCAP → MELD           IEMOCAP     MELD run      iemocap-to-meld
#   MELD → MELD              MELD        its own       iemocap-to-meld (target side)
#
# and the same four with the *-frustration-as-anger maps (IEMOCAP
# frustrated counted as anger). Each evaluation writes
# eval-map-<map>-<data corpus>-test.json in its model's run; this script
# gathers them into docs/results/cross-dataset.json and prints a table.
# Nothing is trained; deterministic (a rerun gives the same numbers).
#
#   scripts/run_cross_dataset.sh
#   MMER=target/debug/mmer scripts/run_cross_dataset.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MMER=${MMER:-target/release/mmer}
MELD_RUN=${MELD_RUN:-runs/meld-mpnet-layer8-am2emoje}
IEMOCAP_RUN=${IEMOCAP_RUN:-runs/iemocap-mpnet-layer8-am2emoje}
OUT=${OUT:-docs/results/cross-dataset.json}
MAPS=docs/label-maps
[ -x "$MMER" ] || cargo build --release --bin mmer
"$MMER" eval --help | grep -q -- --label-map || {
  echo "$MMER has no 'eval --label-map': rebuild it (cargo build --release --bin mmer)" >&2
  exit 1
}
for run in "$MELD_RUN" "$IEMOCAP_RUN"; do
  [ -f "$run/results.json" ] || { echo "no finished run at $run" >&2; exit 1; }
done
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
rows=()
evaluate() { # row-name variant run map data-corpus [--on data-run]
  local name=$1 variant=$2 run=$3 map=$4 corpus=$5
  shift 5
  echo "== $name ($variant)" >&2
  "$MMER" eval "$run" --split test --label-map "$MAPS/$map.toml" "$@" > "$LOGS/out" 2> "$LOGS/err" || {
    cat "$LOGS/err" >&2
    exit 1
  }
  cat "$LOGS/out" >&2
  local file="$run/eval-map-$map-$corpus-test.json"
  # Beside the model: always predicting the most frequent comparison class
  # of the scored turns (deterministic; from the gold supports).
  jq --arg row "$name" --arg variant "$variant" '
    (.scores.single_label.per_seed[0][1].per_class | map(.support)) as $s
    | ($s | add) as $n | ($s | max) as $m | ($m / $n) as $p
    | {row: $row, variant: $variant} + . + {majority_baseline: {
        class: .components[$s | index($m)].name,
        accuracy: $p, weighted_f1: ($p * 2 * $p / (1 + $p)),
        macro_f1: (2 * $p / (1 + $p) / ($s | length))}}' "$file" \
    > "$LOGS/row-${#rows[@]}.json"
  rows+=("$LOGS/row-${#rows[@]}.json")
}
for variant in "" "-frustration-as-anger"; do
  label=${variant#-}
  label=${label:-frustrated left out}
  evaluate "MELD → IEMOCAP" "$label" "$MELD_RUN" "meld-to-iemocap$variant" iemocap --on "$IEMOCAP_RUN"
  evaluate "IEMOCAP → IEMOCAP" "$label" "$IEMOCAP_RUN" "meld-to-iemocap$variant" iemocap
  evaluate "IEMOCAP → MELD" "$label" "$IEMOCAP_RUN" "iemocap-to-meld$variant" meld --on "$MELD_RUN"
  evaluate "MELD → MELD" "$label" "$MELD_RUN" "iemocap-to-meld$variant" meld
done
jq -s --arg meld "$MELD_RUN" --arg iemocap "$IEMOCAP_RUN" '{
  description: "Cross-dataset evaluation on the test splits: text-only MPNet layer-8 AM²-EmoJE runs, 5 seeds each, scored on the other corpus through an explicit label map (docs/label-maps/), and in-domain on the same comparison classes and turns. Single-label: the model'"'"'s softmax summed per comparison class, argmax over the classes; turns whose gold class is unmapped are left out (turns.unmapped_gold); the probability on the model'"'"'s unmapped classes is reported (unmapped_prediction). majority_baseline: always the most frequent comparison class of the scored turns. Metrics are mean ± sample std over seeds (fractions). Written by scripts/run_cross_dataset.sh.",
  runs: {meld: $meld, iemocap: $iemocap},
  rows: .
}' "${rows[@]}" > "$OUT.partial"
mv "$OUT.partial" "$OUT"
echo "written: $OUT" >&2
# The table: weighted F1 and per-comparison-class F1 (percent, mean ± std).
jq -r '
  def f2: (. * 10000 | round) as $n
    | "\($n / 100 | floor).\($n % 100 | tostring | if length < 2 then "0" + . else . end)";
  def pct: "\(.mean | f2) ± \(.std | f2)";
  .rows[] as $r
  | ($r.scores.single_label.aggregate) as $a
  | "| \($r.row) | \($r.variant) | \($r.kind) | \($r.turns.scored)/\($r.turns.labelled) | \($a.weighted_f1 | pct) | \($a.macro_f1 | pct) | "
    + ([$r.components, $a.per_class_f1] | transpose | map("\(.[0].name) \(.[1] | pct)") | join(", "))
    + " | \($r.unmapped_prediction.mean_probability | pct) | \($r.majority_baseline.weighted_f1 | f2) |"
' "$OUT" | {
  echo "| row | variant | kind | scored turns | weighted F1 | macro F1 | per-class F1 | unmapped prob. | majority wF1 |"
  echo "|---|---|---|---|---|---|---|---|---|"
  cat
}
