#!/usr/bin/env bash
# Issue 19's throughput model: what one extraction process costs per file and
# per media-hour, its memory, and whether N shards on one machine do what the
# model says (docs/scale-out.md reads these numbers).
#
# Corpora, built in the run directory from ../shared/data (deleted at the end):
#   short   CREMA-D's 6 clips x --copies folders (2.1-2.9 s each, 480x360
#           30 fps FLV, a face on screen): turn-sized clips, Audio+Face+Body
#   long    each CREMA-D clip re-encoded (H.264 + AAC MP4) and looped to 30 s
#           (ffmpeg -stream_loop), twice: 12 recordings of 30 s, Audio+Face+Body
#   speech  EmoDB's 535 WAVs (audio only, --no-visual)
# Runs, back to back, each under /usr/bin/time (wall, peak RSS):
#   <corpus>.jobs1   mmer extract CORPUS --jobs 1 (one core: the cost model)
#   <corpus>.sim     scripts/simulate_cluster.sh CORPUS --shards (Slurm script
#                    x N processes at once, --jobs 1 each, then the merge; and
#                    one process --jobs 2; merged == single byte for byte)
#                    for short and speech
# Then bench/scale_out.py fits cost = a + b * duration per file (short and
# long) and writes summary.md / results.json: core-seconds per file and per
# media-hour, peak RSS, the N-shard run against the model's prediction.
#
# Usage: bench/scale_out.sh [--copies K] [--shards N] [--out DIR]
#   --copies K  copies of the CREMA-D folder in `short` (default 40: 240 clips)
#   --shards N  shards of the local runs (default 8)
#   --out DIR   run directory (default bench/runs/<date>-<host>-scale-out[-k])
# Environment: MMER_BIN (default ./target/release/mmer), MMER_MODELS_DIR
# (default ./models). Needs ffmpeg and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

copies=40
shards=8
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --copies) copies="$2"; shift 2 ;;
        --shards) shards="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "scale_out.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
mmer="$(realpath "${MMER_BIN:-target/release/mmer}")"
export MMER_MODELS_DIR="${MMER_MODELS_DIR:-$PWD/models}"
crema=../shared/data/crema-d
emodb=../shared/data/emodb/wav
for need in "$crema" "$emodb"; do
    [ -d "$need" ] || { echo "scale_out.sh: $need not found" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "scale_out.sh: needs GNU time (apt-get install time)" >&2; exit 2; }
if [ -z "$out" ]; then
    out="bench/runs/$(date +%F)-$(hostname -s)-scale-out"
    k=2
    base="$out"
    while [ -e "$out" ]; do out="$base-$k"; k=$((k + 1)); done
fi
mkdir -p "$out"
out="$(realpath "$out")"
work="$out/work"
mkdir -p "$work/short" "$work/long"
lscpu >"$out/lscpu.txt"
{ "$mmer" --version; ffmpeg -version | head -1; git rev-parse HEAD; } >"$out/versions.txt" 2>&1

echo "== corpora in $work" >&2
for k in $(seq -w 0 $((copies - 1))); do
    mkdir -p "$work/short/copy-$k"
    cp "$crema"/*.flv "$work/short/copy-$k/"
done
for clip in "$crema"/*.flv; do
    name="$(basename "$clip" .flv)"
    # ffmpeg 5.1 cannot seek back in these FLVs (-stream_loop fails with
    # EPERM): transcode once, then loop the MP4.
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$clip" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac "$work/$name.mp4"
    for rep in a b; do
        ffmpeg -nostdin -hide_banner -loglevel error -y -stream_loop 14 -i "$work/$name.mp4" \
            -t 30 -c copy "$work/long/$name-$rep.mp4"
    done
    rm "$work/$name.mp4"
done

# timed NAME CMD...: /usr/bin/time's "wall_s peak_rss_kib" into NAME.time.
timed() {
    local name="$1"
    shift
    echo "== $name: $*" >&2
    /usr/bin/time -f '%e %M' -o "$out/$name.time" "$@" >"$out/$name.log" 2>&1
}

timed short.jobs1 "$mmer" extract "$work/short" --out "$work/short.jobs1" --jobs 1 --json
timed long.jobs1 "$mmer" extract "$work/long" --out "$work/long.jobs1" --jobs 1 --json
timed speech.jobs1 "$mmer" extract "$emodb" --out "$work/speech.jobs1" --jobs 1 --no-visual --json
cp "$work/short.jobs1/report.json" "$out/short.jobs1.report.json"
cp "$work/long.jobs1/report.json" "$out/long.jobs1.report.json"
cp "$work/speech.jobs1/report.json" "$out/speech.jobs1.report.json"

MMER="$mmer" MMER_SIM_K8S=0 scripts/simulate_cluster.sh "$work/short" "$shards" "$work/short.sim" \
    >"$out/short.sim.log" 2>&1
cp "$work/short.sim/timings.tsv" "$out/short.sim.timings.tsv"
MMER="$mmer" MMER_SIM_K8S=0 MMER_EXTRACT_FLAGS=--no-visual \
    scripts/simulate_cluster.sh "$emodb" "$shards" "$work/speech.sim" >"$out/speech.sim.log" 2>&1
cp "$work/speech.sim/timings.tsv" "$out/speech.sim.timings.tsv"

python3 bench/scale_out.py "$out" --shards "$shards" | tee "$out/summary.md"
rm -rf "$work"
echo "results: $out" >&2
