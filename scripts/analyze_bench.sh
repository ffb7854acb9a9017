#!/usr/bin/env bash
# Measures `mmer analyze` (docs/RESULTS.md, "From a recording to emotions"):
#  1. the 6 CREMA-D clips: every modality's reading and the fused emotion
#     against the clip's label (CSV in target/analyze-bench/crema-d.csv);
#  2. a 19 s conversation video made of those clips (0.8 s pauses, H.264 +
#     AAC): seconds per stage and peak memory;
#  3. a 10-minute audio recording (the MELD espeak-ng corpus of
#     scripts/asr_corpus.py, looped): seconds per stage and peak memory, to
#     show memory stays bounded on long input.
# Needs ../shared/data/crema-d, target/asr-corpus (scripts/asr_corpus.py),
# ffmpeg, GNU time (/usr/bin/time), scripts/setup.sh's models.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/analyze-bench
mkdir -p "$out"
cargo build --release --bin mmer
mmer=./target/release/mmer

"$mmer" analyze ../shared/data/crema-d --format csv --out "$out/crema-d.csv"

inputs=() filters="" n=0
for f in ../shared/data/crema-d/*.flv; do
    inputs+=(-i "$f")
    filters+="[$n:v]scale=480:360,fps=30,tpad=stop_duration=0.8:color=black[v$n];"
    filters+="[$n:a]aresample=16000,apad=pad_dur=0.8[a$n];"
    n=$((n + 1))
done
concat=""
for i in $(seq 0 $((n - 1))); do concat+="[v$i][a$i]"; done
ffmpeg -nostdin -hide_banner -loglevel error -y "${inputs[@]}" \
    -filter_complex "${filters}${concat}concat=n=$n:v=1:a=1[v][a]" \
    -map "[v]" -map "[a]" -c:v libx264 -pix_fmt yuv420p -c:a aac "$out/conversation.mp4"

long="$out/ten-minutes.wav"
ffmpeg -nostdin -hide_banner -loglevel error -y -stream_loop 2 -i target/asr-corpus/meld/long.wav \
    -t 600 -ar 16000 -ac 1 "$long"

for f in "$out/conversation.mp4" "$long"; do
    /usr/bin/time -v "$mmer" analyze "$f" --format jsonl --out "$f.jsonl" 2>"$f.time"
    "$mmer" analyze "$f" --format table --out "$f.txt" 2>/dev/null
    grep -E "Maximum resident|Elapsed" "$f.time"
done
