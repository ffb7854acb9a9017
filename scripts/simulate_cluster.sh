#!/usr/bin/env bash
# Run the cluster examples (examples/cluster/) on this machine and check that
# sharded extraction + merge gives the store one process gives.
#
# Usage: scripts/simulate_cluster.sh INPUT [N] [WORKDIR]
#   INPUT    a media file, a folder of media or a conversation .jsonl/.csv
#   N        number of shards (default 8)
#   WORKDIR  where the stores, logs and timings go (default: a new mktemp -d)
#
# Environment:
#   MMER                the mmer binary (default: target/release/mmer)
#   MMER_EXTRACT_FLAGS  extra flags for every extraction, e.g. "--no-visual"
#   MMER_MODELS_DIR     models of scripts/setup.sh (default: <repo>/models)
#   MMER_SIM_K8S        0 skips the Kubernetes simulation (default: 1)
#
# What it runs, each command under /usr/bin/time (wall s, peak RSS):
#  1. Slurm: examples/cluster/slurm/extract.sbatch as plain bash, N copies at
#     once, with SLURM_ARRAY_TASK_ID=i, SLURM_ARRAY_TASK_COUNT=N and
#     SLURM_CPUS_PER_TASK=1 (so --jobs 1), into WORKDIR/slurm/shard-i; then
#     merge.sbatch as plain bash into WORKDIR/slurm/merged.
#  2. Kubernetes: the container scripts (args[0]) of
#     examples/cluster/k8s/extract-job.yaml and merge-job.yaml, read with
#     PyYAML and run with sh as the pods would, JOB_COMPLETION_INDEX=i,
#     MMER_JOBS=1, `mmer` on PATH, the /data paths replaced by WORKDIR/k8s.
#     What is not simulated: the image, the volume, the scheduler, retries.
#     It also checks that spec.completions equals MMER_SHARDS in both files.
#  3. One plain `mmer extract INPUT --out WORKDIR/single --jobs 2`.
#  4. Resume: shard 0 (Slurm) extracted again, which must skip every file,
#     and the merge run again over its own output.
# Each merged store must equal the single store byte for byte in
# manifest.json, index.json and every file under utterances/ (the per-run
# report.json/report.txt, shard.json and merge.json/merge.txt are not compared).
#
# Output: WORKDIR/timings.tsv (step, shard, wall_s, peak_rss_kib, exit),
# WORKDIR/logs/<step>.log, and PASS or FAIL on the last line (exit 0 / 1).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
slurm_dir="$repo_root/examples/cluster/slurm"
k8s_dir="$repo_root/examples/cluster/k8s"

die() {
    echo "simulate_cluster.sh: error: $*" >&2
    exit 2
}

[ "$#" -ge 1 ] && [ "$#" -le 3 ] || {
    sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
input="$1"
shards="${2:-8}"
work="${3:-}"
case "$shards" in
    '' | *[!0-9]* | 0) die "N must be a positive integer, got '$shards'" ;;
esac
[ -e "$input" ] || die "input '$input' does not exist"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed: apt-get install time"

mmer="${MMER:-$repo_root/target/release/mmer}"
[[ "$mmer" == /* ]] || mmer="$PWD/$mmer"
[ -x "$mmer" ] || die "no mmer binary at $mmer (cargo build --release --bin mmer, or set MMER)"
export MMER_MODELS_DIR="${MMER_MODELS_DIR:-$repo_root/models}"
read -r -a extra_flags <<<"${MMER_EXTRACT_FLAGS:-}"
sim_k8s="${MMER_SIM_K8S:-1}"
if [ "$sim_k8s" = 1 ] && [[ "$input" =~ [[:space:]] ]]; then
    echo "note: INPUT has whitespace, which the k8s script splits (MMER_INPUTS); skipping the k8s simulation" >&2
    sim_k8s=0
fi

if [ -z "$work" ]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/mmer-sim.XXXXXX")"
else
    mkdir -p "$work"
    work="$(cd "$work" && pwd)"
    if [ -n "$(ls -A "$work")" ]; then
        echo "note: $work is not empty: extractions resume there, so the timings are not those of a fresh run" >&2
    fi
fi
logs="$work/logs"
mkdir -p "$logs"
timings="$work/timings.tsv"
printf 'step\tshard\twall_s\tpeak_rss_kib\texit\n' >"$timings"

echo "mmer:   $mmer"
echo "input:  $input   shards: $shards   extra flags: ${MMER_EXTRACT_FLAGS:-(none)}"
echo "models: $MMER_MODELS_DIR"
echo "work:   $work"

# timed TAG CMD...: run CMD with its output in logs/TAG.log, GNU time's
# "wall_s peak_rss_kib" in logs/TAG.time and its exit status in logs/TAG.rc.
timed() {
    local tag="$1" rc=0
    shift
    /usr/bin/time -f '%e %M' -o "$logs/$tag.time" "$@" >"$logs/$tag.log" 2>&1 || rc=$?
    echo "$rc" >"$logs/$tag.rc"
}

# record STEP SHARD TAG: append TAG's numbers to timings.tsv; prints the exit status.
record() {
    local step="$1" shard="$2" tag="$3" wall rss rc
    # GNU time puts "Command exited with non-zero status N" before the format line.
    read -r wall rss < <(tail -n 1 "$logs/$tag.time")
    rc="$(cat "$logs/$tag.rc")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$step" "$shard" "$wall" "$rss" "$rc" >>"$timings"
    echo "$rc"
}

now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

failures=()
check_rc() { # check_rc TAG RC
    [ "$2" = 0 ] || failures+=("$1 exited with $2 (log: $logs/$1.log)")
}

# run_shards STEP LAUNCH: LAUNCH i runs shard i; all N at once, then one row
# per shard and one for the whole step (its wall time; the largest peak RSS).
run_shards() {
    local step="$1" launch="$2" i start wall rc max=0 sum=0 rss
    start="$(now)"
    for ((i = 0; i < shards; i++)); do
        "$launch" "$i" &
    done
    wait
    wall="$(elapsed "$start" "$(now)")"
    for ((i = 0; i < shards; i++)); do
        rc="$(record "$step" "$i" "$step-$i")"
        check_rc "$step-$i" "$rc"
        rss="$(tail -n 1 "$logs/$step-$i.time" | cut -d' ' -f2)"
        sum=$((sum + rss))
        [ "$rss" -le "$max" ] || max="$rss"
    done
    printf '%s\tall\t%s\t%s\t-\n' "$step" "$wall" "$max" >>"$timings"
    echo "  $step: $shards shards in ${wall} s; peak RSS per shard at most $((max / 1024)) MiB, $((sum / 1024)) MiB summed"
}

# compare STORE: STORE against the single-process store, byte for byte.
compare() {
    local store="$1" single="$work/single" f ok=1 n
    for f in manifest.json index.json; do
        if ! cmp -s "$store/$f" "$single/$f"; then
            failures+=("$store/$f differs from $single/$f")
            ok=0
        fi
    done
    if ! diff -rq "$store/utterances" "$single/utterances" >"$logs/diff.tmp" 2>&1; then
        failures+=("$store/utterances differs from $single/utterances: $(head -n 3 "$logs/diff.tmp" | tr '\n' ';')")
        ok=0
    fi
    rm -f "$logs/diff.tmp"
    n="$(find "$single/utterances" -type f 2>/dev/null | wc -l)"
    if [ "$ok" = 1 ]; then
        echo "  $store == single: manifest.json, index.json, $n files under utterances/"
    fi
}

# --- 1. Slurm ---------------------------------------------------------------------
slurm_extract() { # slurm_extract I [TAG]
    timed "${2:-slurm-extract-$1}" env SLURM_ARRAY_TASK_ID="$1" SLURM_ARRAY_TASK_COUNT="$shards" \
        SLURM_CPUS_PER_TASK=1 MMER="$mmer" MMER_STORES="$work/slurm" \
        MMER_EXTRACT_FLAGS="${MMER_EXTRACT_FLAGS:-}" \
        bash "$slurm_dir/extract.sbatch" "$input"
}
slurm_merge() {
    timed "$1" env MMER_SHARDS="$shards" MMER="$mmer" MMER_STORES="$work/slurm" \
        MMER_MERGED="$work/slurm/merged" bash "$slurm_dir/merge.sbatch"
}

echo "== Slurm: extract.sbatch x $shards, then merge.sbatch"
run_shards slurm-extract slurm_extract
slurm_merge slurm-merge
check_rc slurm-merge "$(record slurm-merge - slurm-merge)"
for ((i = 0; i < shards; i++)); do
    printf '  shard-%s: %s utterances\n' "$i" \
        "$(find "$work/slurm/shard-$i/utterances" -type f 2>/dev/null | wc -l)"
done

# --- 2. Kubernetes ------------------------------------------------------------------
if [ "$sim_k8s" = 1 ]; then
    echo "== Kubernetes: extract-job.yaml's script x $shards, then merge-job.yaml's"
    python=python3
    "$python" -c 'import yaml' 2>/dev/null || python="$repo_root/target/examples-venv/bin/python"
    "$python" -c 'import yaml' 2>/dev/null ||
        die "PyYAML is needed for the k8s simulation (pip install pyyaml, or MMER_SIM_K8S=0)"
    mkdir -p "$work/k8s" "$work/bin"
    # Writes extract.sh and merge.sh, the containers' scripts; prints problems.
    "$python" - "$k8s_dir/extract-job.yaml" "$k8s_dir/merge-job.yaml" "$work/k8s" \
        >"$logs/k8s-yaml.log" 2>&1 <<'PY' || failures+=("k8s manifests: $(tr '\n' ' ' <"$logs/k8s-yaml.log")")
import sys, yaml
extract_path, merge_path, out = sys.argv[1:4]
problems = []
def container(path):
    with open(path) as f:
        job = yaml.safe_load(f)
    c = job["spec"]["template"]["spec"]["containers"][0]
    if c.get("command") != ["/bin/sh", "-c"] or len(c.get("args", [])) != 1:
        problems.append(f"{path}: expected command [/bin/sh, -c] and one args entry")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    return job, c["args"][0], env
job, extract_script, extract_env = container(extract_path)
_, merge_script, merge_env = container(merge_path)
spec = job["spec"]
if spec.get("completionMode") != "Indexed":
    problems.append(f"{extract_path}: completionMode is not Indexed")
n = str(spec.get("completions"))
for path, env in ((extract_path, extract_env), (merge_path, merge_env)):
    if env.get("MMER_SHARDS") != n:
        problems.append(f"{path}: MMER_SHARDS={env.get('MMER_SHARDS')!r} but extract-job.yaml has completions {n}")
with open(f"{out}/extract.sh", "w") as f:
    f.write(extract_script)
with open(f"{out}/merge.sh", "w") as f:
    f.write(merge_script)
if problems:
    sys.exit("\n".join(problems))
PY
    ln -sf "$mmer" "$work/bin/mmer"
    k8s_extract() {
        timed "k8s-extract-$1" env JOB_COMPLETION_INDEX="$1" MMER_SHARDS="$shards" \
            MMER_INPUTS="$input" MMER_STORES="$work/k8s" MMER_JOBS=1 \
            MMER_EXTRACT_FLAGS="${MMER_EXTRACT_FLAGS:-}" PATH="$work/bin:$PATH" \
            sh -c "$(cat "$work/k8s/extract.sh")"
    }
    run_shards k8s-extract k8s_extract
    timed k8s-merge env MMER_SHARDS="$shards" MMER_STORES="$work/k8s" \
        MMER_MERGED="$work/k8s/merged" PATH="$work/bin:$PATH" \
        sh -c "$(cat "$work/k8s/merge.sh")"
    check_rc k8s-merge "$(record k8s-merge - k8s-merge)"
else
    echo "== Kubernetes: skipped (MMER_SIM_K8S=0)"
fi

# --- 3. One process -----------------------------------------------------------------
echo "== one process: mmer extract --jobs 2"
timed single "$mmer" extract "$input" --out "$work/single" --jobs 2 "${extra_flags[@]}"
check_rc single "$(record single - single)"
echo "  single: $(tail -n 1 "$logs/single.time" | awk '{ printf "%s s, peak RSS %d MiB", $1, $2 / 1024 }')"

# --- 4. Resume ----------------------------------------------------------------------
echo "== resume: shard 0 again (nothing left to extract), merge again"
slurm_extract 0 slurm-extract-rerun-0
check_rc slurm-extract-rerun-0 "$(record slurm-extract-rerun 0 slurm-extract-rerun-0)"
slurm_merge slurm-merge-rerun
check_rc slurm-merge-rerun "$(record slurm-merge-rerun - slurm-merge-rerun)"
echo "  rerun of shard 0: $(tail -n 1 "$logs/slurm-extract-rerun-0.time" | cut -d' ' -f1) s"

# --- compare ------------------------------------------------------------------------
echo "== compare with the single-process store"
if [ ! -d "$work/single/utterances" ] || [ -z "$(ls -A "$work/single/utterances")" ]; then
    failures+=("the single-process store has no utterances: nothing to compare (see $logs/single.log)")
else
    compare "$work/slurm/merged"
    [ "$sim_k8s" != 1 ] || compare "$work/k8s/merged"
fi

echo "== timings ($timings)"
if command -v column >/dev/null; then
    column -t -s $'\t' "$timings" | sed 's/^/  /'
else
    sed 's/^/  /' "$timings"
fi
if [ "${#failures[@]}" -eq 0 ]; then
    echo "PASS: $shards shards merged == one process ($work)"
else
    printf '  %s\n' "${failures[@]}"
    echo "FAIL: ${#failures[@]} problem(s) ($work)"
    exit 1
fi
