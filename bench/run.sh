#!/usr/bin/env bash
# mmer vs PyTorch + sentence-transformers, same work, same run.
#
# For each workload, runs `mmer bench …` and then bench/pytorch_reference.py
# back to back on the same inputs and thread count, and prints a markdown table
# (seconds, ratio mmer/PyTorch, peak RSS). Workloads:
#   embed-minilm   sentence embeddings of the first N MELD train utterances (batch 32)
#   embed-mpnet    the same with all-mpnet-base-v2
#   train-epoch    one epoch (or E) of the AMuSE context model on MELD train
#                  MiniLM embeddings from the feature store, same batch order
#   predict-20     mmer only: embed + predict one 20-turn MELD conversation
#                  after model load (median of 5), with the checkpoint trained
#                  by the train-epoch workload (needs train-epoch)
#   train-amuse    E epochs of AMuSE (MAN + Adaptive Fusion + context) on the
#                  synthetic multimodal conversations, docs/configs/
#                  synthetic-amuse.toml; the PyTorch side (pytorch_amuse.py)
#                  trains on the z-scored inputs mmer exports, same batch order
#   train-am2emoje the same for AM²-EmoJE (MAN + joint embedding, imputation,
#                  query-adaptive fusion, modality and frame dropout + context),
#                  docs/configs/synthetic-am2emoje.toml, pytorch_am2emoje.py
#   train-semul    the same for SeMuL-PCD (per-modality token streams with
#                  aggregation tokens + a cross-attending fusion token, peer
#                  heads, InfoNCE, calibration and peer distillation) on the
#                  synthetic multi-label clips,
#                  docs/configs/synthetic-multilabel-semul.toml, pytorch_semul.py
#   finetune-step  seconds per fine-tuning step of MPNet (all-mpnet-base-v2) on
#                  batches of 16 MELD train utterances: mean pooling, a linear
#                  head, cross-entropy, AdamW (lr 2e-5, wd 0.01); all 12 layers
#                  and the embeddings trained, or with --ft-layers K only the
#                  top K (the states under them computed beforehand, untimed).
#                  mmer writes the token ids and labels of every batch
#                  (finetune-inputs.json: 1 warm-up, then the timed ones) and
#                  pytorch_finetune_step.py (transformers' MPNetModel) does the
#                  same steps on them; the ratio is of median seconds per step
# Both sides time only the work, not process start or model loading. Peak RSS
# is the whole process's maximum resident set from `/usr/bin/time -v` (Debian
# package `time`); without it the processes' own VmHWM / ru_maxrss readings are
# used. Each side also reports its resident set right before the timed work
# (what loading left), in results.json.
#
# Results go to bench/runs/<date>-<host>/: results.json, summary.md, each
# side's JSON report, log and /usr/bin/time output, and loadavg.log (sampled
# every 5 s: concurrent jobs distort absolute times; the ratio is what counts).
#
# Usage: bench/run.sh [--workloads LIST] [--n N] [--epochs E] [--ft-steps S] [--ft-layers K]
#                     [--threads T] [--no-build] [--out DIR]
#   --workloads  comma-separated subset of the workloads above (default all)
#   --n N        utterances to embed (default 2000)
#   --epochs E   training epochs to time (default 1)
#   --ft-steps S   finetune-step: timed steps (default 5), after 1 warm-up step
#   --ft-layers K  finetune-step: top MPNet layers trained, 1-12 (default 12:
#                the whole model, embeddings included)
#   --threads T  threads on both sides (default 2): RAYON_NUM_THREADS, mmer
#                --workers (embedding: T single-threaded batches in flight, so
#                RAYON_NUM_THREADS=1 there) and --data-parallel (training and
#                the fine-tuning step: T batch shards on T threads; runs before
#                2026-12-08 timed the fine-tuning step on one thread),
#                torch.set_num_threads, OMP/MKL_NUM_THREADS
#                (OMP_WAIT_POLICY defaults to PASSIVE; see pytorch_reference.py)
#   --no-build   use the existing target/release/mmer
#   --out DIR    run directory (default bench/runs/<date>-<host>[-k])
# Environment:
#   MMER_BENCH_VENV   Python venv to use/create
#                     (default ${XDG_CACHE_HOME:-$HOME/.cache}/mmer/bench-venv)
#   MMER_TORCH_INDEX  pip index for torch (default the CPU-only wheels,
#                     https://download.pytorch.org/whl/cpu; if unreachable,
#                     PyPI's torch, which on Linux x86_64 is the CUDA build)
#   MMER_MELD_DIR     MELD CSV directory (default ../shared/data/meld)
#   MMER_MODELS_DIR   sentence-encoder weights (default ./models; scripts/setup.sh)
#   CARGO_TARGET_DIR  cargo's target directory (default ./target)
# Needs: cargo, python3 (with venv), network once for the pip install. Nothing
# downloads model weights: both sides read ./models.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

n=2000
epochs=1
ft_steps=5
ft_layers=12
ft_warmup=1
threads=2
build=1
out=""
workloads="embed-minilm,embed-mpnet,train-epoch,predict-20,train-amuse,train-am2emoje,train-semul,finetune-step"
while [ $# -gt 0 ]; do
    case "$1" in
        --workloads) workloads="$2"; shift 2 ;;
        --n) n="$2"; shift 2 ;;
        --epochs) epochs="$2"; shift 2 ;;
        --ft-steps) ft_steps="$2"; shift 2 ;;
        --ft-layers) ft_layers="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --out) out="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for value in "$n" "$epochs" "$threads" "$ft_steps" "$ft_layers"; do
    case "$value" in
        '' | *[!0-9]* | 0) echo "error: --n, --epochs, --ft-steps, --ft-layers and --threads take positive integers, got '$value'" >&2; exit 2 ;;
    esac
done
if [ "$ft_layers" -gt 12 ]; then
    echo "error: --ft-layers $ft_layers: MPNet has 12 layers" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
meld="${MMER_MELD_DIR:-../shared/data/meld}"
models="${MMER_MODELS_DIR:-$root/models}"
venv="${MMER_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mmer/bench-venv}"
torch_index="${MMER_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
target="${CARGO_TARGET_DIR:-$root/target}"
mmer="$target/release/mmer"

for f in "$meld/train_sent_emo.csv" "$meld/test_sent_emo.csv"; do
    [ -f "$f" ] || { echo "error: $f not found (set MMER_MELD_DIR)" >&2; exit 2; }
done
for m in all-minilm-l6-v2 all-mpnet-base-v2; do
    [ -f "$models/$m/model.safetensors" ] || { echo "error: $models/$m is not installed: run scripts/setup.sh" >&2; exit 2; }
done

# --- Python side: a venv with CPU torch, sentence-transformers, transformers
# (pinned: pytorch_finetune_step.py calls MPNet's layers one by one, and checks
# that path against MPNetModel's own forward), safetensors.
transformers_pin="transformers==5.25.0"
if ! "$venv/bin/python" -c 'import torch, sentence_transformers, transformers, safetensors' 2>/dev/null; then
    echo "creating the benchmark venv in $venv (one-time download of torch, sentence-transformers, transformers)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    if ! "$venv/bin/pip" install --quiet --retries 1 --timeout 20 --index-url "$torch_index" torch; then
        # PyPI's Linux x86_64 torch is the CUDA build: it runs on the CPU all the
        # same, but its import maps ~0.7 GB of CUDA libraries (summary.md notes it).
        echo "note: $torch_index unreachable; installing torch from PyPI (CUDA build)" >&2
        "$venv/bin/pip" install --quiet torch
    fi
    "$venv/bin/pip" install --quiet sentence-transformers "$transformers_pin" safetensors
fi
python="$venv/bin/python"

# --- Rust side.
if [ "$build" = 1 ]; then
    cargo build --release --bin mmer >&2
fi
[ -x "$mmer" ] || { echo "error: $mmer not found (drop --no-build or set CARGO_TARGET_DIR)" >&2; exit 2; }

# --- Run directory and machine description.
if [ -z "$out" ]; then
    base="bench/runs/$(date +%Y-%m-%d)-$(hostname -s 2>/dev/null || echo host)"
    out="$base"
    k=2
    while [ -e "$out" ]; do out="$base-$k"; k=$((k + 1)); done
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_timer_init "peak RSS falls back to the processes' own VmHWM/ru_maxrss"

export RAYON_NUM_THREADS="$threads" RAYON_RS_NUM_CPUS="$threads"
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
# Sleeping rather than spinning OpenMP workers: with other jobs on the machine,
# torch's default spinning policy made its epochs 10-25x slower (see
# pytorch_reference.py). mmer (rayon) is not affected.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MMER_MODELS_DIR="$models"

{
    lscpu 2>/dev/null || true
} >"$out/lscpu.txt"
cat /proc/loadavg >"$out/loadavg-start.txt"
{
    echo "mmer: $("$mmer" --version)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
    echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
    "$python" -c 'import platform, torch, sentence_transformers, transformers, safetensors
print("python:", platform.python_version())
print("torch:", torch.__version__, "(CUDA build: its import maps ~0.7 GB of CUDA libraries into the RSS)" if torch.version.cuda else "(CPU build)")
print("sentence-transformers:", sentence_transformers.__version__)
print("transformers:", transformers.__version__)
print("safetensors:", safetensors.__version__)'
} >"$out/versions.txt"

# Load average every 5 s while the benchmark runs.
bench_sampler_start
trap 'kill "$sampler" 2>/dev/null || true' EXIT

# wanted <workload>: true if --workloads lists it.
wanted() {
    case ",$workloads," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}
if wanted predict-20 && ! wanted train-epoch; then
    echo "error: predict-20 needs the checkpoint of train-epoch; list both" >&2
    exit 2
fi
echo "$workloads" >"$out/workloads.txt"

reference="$root/bench/pytorch_reference.py"
for encoder in minilm mpnet; do
    wanted "embed-$encoder" || continue
    # T batches in flight, each single-threaded: candle splits every matrix
    # product over RAYON_NUM_THREADS threads, and inside a worker that split
    # only costs (about 1.3x on MiniLM); mmer's docs recommend the same.
    run "embed-$encoder.mmer" env RAYON_NUM_THREADS=1 "$mmer" bench text --encoder "$encoder" \
        --meld-csv "$meld/train_sent_emo.csv" --n "$n" --batch-size 32 --workers "$threads" \
        --texts-out "$out/texts.json"
    run "embed-$encoder.pytorch" "$python" "$reference" text --encoder "$encoder" --texts "$out/texts.json" \
        --models-dir "$models" --batch-size 32 --threads "$threads"
done
if wanted train-epoch; then
    run "train-epoch.mmer" "$mmer" bench train-epoch --encoder minilm --data "$meld" --store store \
        --epochs "$epochs" --batch-size 16 --data-parallel "$threads" --order-out "$out/order.json" \
        --save-checkpoint "$out/checkpoint"
    run "train-epoch.pytorch" "$python" "$reference" train-epoch --store store --encoder-name all-MiniLM-L6-v2 \
        --meld-csv "$meld/train_sent_emo.csv" --order "$out/order.json" --epochs "$epochs" --batch-size 16 \
        --threads "$threads"
fi
if wanted predict-20; then
    run "predict-20.mmer" "$mmer" bench predict --model "$out/checkpoint" --meld-csv "$meld/test_sent_emo.csv" \
        --turns 20 --repeats 5
fi
for model in amuse am2emoje semul; do
    wanted "train-$model" || continue
    case "$model" in
        semul) config="docs/configs/synthetic-multilabel-semul.toml" ;;
        *) config="docs/configs/synthetic-$model.toml" ;;
    esac
    run "train-$model.mmer" "$mmer" bench train-epoch --config "$config" \
        --epochs "$epochs" --batch-size 16 --data-parallel "$threads" --export "$out/$model-data" \
        --order-out "$out/$model-order.json"
    run "train-$model.pytorch" "$python" "$root/bench/pytorch_$model.py" --export "$out/$model-data" \
        --order "$out/$model-order.json" --epochs "$epochs" --threads "$threads"
    rm -rf "$out/$model-data" # regenerated by any run; 6 MB
done
if wanted finetune-step; then
    # T batch shards on T threads (burn-flex multiplies on one thread each)
    # against torch.set_num_threads(T).
    run "finetune-step.mmer" "$mmer" bench finetune-step --encoder mpnet --batch 16 --steps "$ft_steps" \
        --warmup-steps "$ft_warmup" --layers "$ft_layers" --data-parallel "$threads" --meld-csv "$meld/train_sent_emo.csv" \
        --inputs-out "$out/finetune-inputs.json"
    run "finetune-step.pytorch" "$python" "$root/bench/pytorch_finetune_step.py" --inputs "$out/finetune-inputs.json" \
        --steps "$ft_steps" --warmup-steps "$ft_warmup" --layers "$ft_layers" --models-dir "$models" \
        --threads "$threads"
fi

bench_sampler_stop

# --- Summary.
python3 - "$out" "$n" "$epochs" "$threads" "$ft_steps" "$ft_layers" "$ft_warmup" <<'PY'
import json, statistics, sys
from pathlib import Path

out, n, epochs, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ft_steps, ft_layers, ft_warmup = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])

def report(name):
    return json.loads((out / f"{name}.json").read_text())

def time_rss_mib(name):
    path = out / f"{name}.time"
    if path.exists():
        for line in path.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.split(":")[-1]) / 1024.0
    return None

def side(name):
    r = report(name)
    env = r.get("environment", {})
    rss = time_rss_mib(name)
    return {
        "report": r,
        "seconds": r.get("median_seconds", r.get("seconds")),
        "peak_rss_mib": rss if rss is not None else env.get("peak_rss_mib"),
        "peak_rss_source": "/usr/bin/time -v" if rss is not None else "in-process VmHWM/ru_maxrss",
        "rss_before_work_mib": env.get("rss_before_work_mib"),
        "loadavg_at_start": (out / f"{name}.loadavg").read_text().split()[1:4],
    }

lscpu = {}
for line in (out / "lscpu.txt").read_text().splitlines():
    key, _, value = line.partition(":")
    lscpu[key.strip()] = value.strip()
loads = [float(l.split()[1]) for l in (out / "loadavg.log").read_text().splitlines() if len(l.split()) > 1]
machine = {
    "cpu": lscpu.get("Model name", "unknown"),
    "cpus": lscpu.get("CPU(s)", "unknown"),
    "threads_per_core": lscpu.get("Thread(s) per core", "unknown"),
    "loadavg_start": (out / "loadavg-start.txt").read_text().split()[:3],
    "loadavg_end": (out / "loadavg-end.txt").read_text().split()[:3],
    "loadavg_1min_during": {
        "min": min(loads, default=None),
        "mean": statistics.fmean(loads) if loads else None,
        "max": max(loads, default=None),
        "samples": len(loads),
    },
    "versions": (out / "versions.txt").read_text().splitlines(),
}

wanted = (out / "workloads.txt").read_text().strip().split(",")
workloads = []
for name, label in [
    ("embed-minilm", f"MiniLM embed, {n} MELD utterances"),
    ("embed-mpnet", f"MPNet embed, {n} MELD utterances"),
    ("train-epoch", f"context model, {epochs} epoch(s) MELD train"),
    ("train-amuse", f"AMuSE (MAN + AF + context, 4 modalities), {epochs} epoch(s) synthetic train"),
    ("train-am2emoje", f"AM²-EmoJE (MAN + joint embedding + context, 4 modalities), {epochs} epoch(s) synthetic train"),
    ("train-semul", f"SeMuL-PCD (peer transformer + distillation, 4 modalities, multi-label), {epochs} epoch(s) synthetic train"),
    (
        "finetune-step",
        "MPNet fine-tuning step, 16 MELD utterances, "
        + ("all 12 layers + embeddings" if ft_layers == 12 else f"top {ft_layers} of 12 layers")
        + f" trained (s per step, median of {ft_steps})",
    ),
]:
    if name not in wanted:
        continue
    m, p = side(f"{name}.mmer"), side(f"{name}.pytorch")
    row = {"workload": name, "label": label, "mmer": m, "pytorch": p, "ratio": m["seconds"] / p["seconds"]}
    if "checksum" in m["report"] and "checksum" in p["report"]:
        a, b = m["report"]["checksum"], p["report"]["checksum"]
        row["checksum_relative_difference"] = abs(a - b) / max(abs(b), 1e-12)
    workloads.append(row)
predict = side("predict-20.mmer") if "predict-20" in wanted else None

results = {
    "schema_version": 1,
    "settings": {
        "n": n,
        "epochs": epochs,
        "threads": threads,
        "batch_size_embed": 32,
        "batch_size_train": 16,
        "finetune": {"steps": ft_steps, "warmup_steps": ft_warmup, "layers": ft_layers, "batch": 16},
    },
    "machine": machine,
    "workloads": workloads,
    "predict_20_turns": predict,
}
(out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

def mib(v):
    return "–" if v is None else f"{v:.0f}"

def per_second(r):
    """Texts or training utterances per second (a fine-tuning step: batch / median)."""
    v = r.get("texts_per_second", r.get("utterances_per_second"))
    if v is None and r.get("batch") and r.get("median_seconds"):
        v = r["batch"] / r["median_seconds"]
    return "–" if v is None else f"{v:.1f}"

def first(r, key):
    v = r.get(key) or [None]
    return "–" if v[0] is None else f"{v[0]:.5f}"

lines = [
    f"# mmer vs PyTorch — {out.name}",
    "",
    f"CPU: {machine['cpu']} ({machine['cpus']} CPUs, {machine['threads_per_core']} thread(s)/core); "
    f"{threads} threads on both sides; OMP_WAIT_POLICY={workloads[0]['pytorch']['report']['environment'].get('omp_wait_policy')}.",
    f"Load average (1/5/15 min) at start: {' '.join(machine['loadavg_start'])}; at end: {' '.join(machine['loadavg_end'])}; "
    f"1-min load during the run: mean {machine['loadavg_1min_during']['mean']:.2f}, "
    f"max {machine['loadavg_1min_during']['max']:.2f}.",
    "",
    "| workload | mmer s | PyTorch s | ratio mmer/PyTorch | mmer peak RSS MiB | PyTorch peak RSS MiB |",
    "|---|---:|---:|---:|---:|---:|",
]
for w in workloads:
    m, p = w["mmer"], w["pytorch"]
    lines.append(
        f"| {w['label']} | {m['seconds']:.2f} | {p['seconds']:.2f} | {w['ratio']:.2f}× | "
        f"{mib(m['peak_rss_mib'])} | {mib(p['peak_rss_mib'])} |"
    )
if predict is not None:
    pr = predict["report"]
    lines += [
        "",
        f"`mmer predict` latency, {pr['turns']}-turn conversation ({pr['conversation']}), after model load "
        f"(load {pr['load_seconds']:.2f} s): first {pr['first_seconds'] * 1e3:.0f} ms, median {pr['median_seconds'] * 1e3:.0f} ms "
        f"of {len(pr['repeat_seconds'])} (embedding {pr['median_embed_seconds'] * 1e3:.0f} ms, model {pr['median_model_seconds'] * 1e3:.0f} ms); "
        f"peak RSS {mib(predict['peak_rss_mib'])} MiB.",
    ]
lines += [
    "",
    "Throughput: "
    + "; ".join(
        f"{w['workload']} mmer {per_second(w['mmer']['report'])}/s, PyTorch {per_second(w['pytorch']['report'])}/s"
        for w in workloads
    )
    + " (texts or training utterances per second).",
    "",
    "Checks: "
    + "; ".join(
        [
            f"{w['workload']} embedding checksums differ by {w['checksum_relative_difference']:.1e} relative"
            for w in workloads
            if "checksum_relative_difference" in w and w["workload"].startswith("embed-")
        ]
        + [
            f"{w['workload']} mean loss of epoch 1 mmer {w['mmer']['report']['epoch_loss'][0]:.5f}, "
            f"PyTorch {w['pytorch']['report']['epoch_loss'][0]:.5f}, parameters {w['mmer']['report'].get('parameters', '–')} / "
            f"{w['pytorch']['report'].get('parameters', '–')}"
            for w in workloads
            if "epoch_loss" in w["mmer"]["report"]
        ]
        + [
            f"{w['workload']} sum of the timed steps' losses (checksum) mmer {w['mmer']['report'].get('checksum', float('nan')):.5f}, "
            f"PyTorch {w['pytorch']['report'].get('checksum', float('nan')):.5f}, "
            f"first timed step mmer {first(w['mmer']['report'], 'loss_per_step')}, "
            f"PyTorch {first(w['pytorch']['report'], 'loss_per_step')}, trained parameters "
            f"{w['mmer']['report'].get('trained_parameters', '–')} / {w['pytorch']['report'].get('trained_parameters', '–')}, "
            "tokens per timed batch "
            + (
                "equal"
                if w["mmer"]["report"].get("tokens_per_batch") == w["pytorch"]["report"].get("tokens_per_batch")
                else f"DIFFER (mmer {w['mmer']['report'].get('tokens_per_batch')}, "
                f"PyTorch {w['pytorch']['report'].get('tokens_per_batch')})"
            )
            for w in workloads
            if w["workload"] == "finetune-step"
        ]
    )
    + " (training: different initialisation and dropout streams; same data and batch order).",
    "",
    f"Peak RSS: {workloads[0]['mmer']['peak_rss_source']}, whole process (loading included). "
    + "RSS right before the timed work (MiB, mmer / PyTorch): "
    + "; ".join(f"{w['workload']} {mib(w['mmer']['rss_before_work_mib'])} / {mib(w['pytorch']['rss_before_work_mib'])}" for w in workloads)
    + ".",
    "",
    "Versions:",
    "",
] + [f"- {v}" for v in machine["versions"]]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"\nwritten: {out}/results.json, {out}/summary.md", file=sys.stderr)
PY
