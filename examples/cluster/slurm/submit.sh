#!/usr/bin/env bash
# Submit the whole extraction to Slurm: an array of N extract tasks
# (extract.sbatch) and the merge (merge.sbatch), which starts only once every
# task has succeeded (--dependency=afterok).
#
#   MMER_SHARDS=16 MMER_STORES=/scratch/me/stores ./submit.sh /data/clips
#
# Arguments are the inputs, passed to every task unchanged. Environment:
#   MMER_SHARDS        N, the number of shards = array tasks  (default: 8)
#   MMER_CONCURRENT    at most this many tasks at once (the array's %K; default: no limit)
#   MMER_MERGE_AFTER   the merge's dependency type (default: afterok). afterany
#                      merges even when a task failed on a bad file; merge
#                      still refuses shards that did not finish.
#   SBATCH_EXTRA       extra sbatch options for both jobs, e.g. "--partition=cpu --account=proj"
# and every variable extract.sbatch / merge.sbatch read (MMER, MMER_INPUTS,
# MMER_STORES, MMER_MODELS_DIR, MMER_MERGED, MMER_EXTRACT_FLAGS), exported to
# the jobs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shards="${MMER_SHARDS:-8}"
after="${MMER_MERGE_AFTER:-afterok}"
read -r -a sbatch_extra <<<"${SBATCH_EXTRA:-}"

case "$shards" in
    '' | *[!0-9]* | 0) echo "submit.sh: MMER_SHARDS must be a positive integer, got '$shards'" >&2; exit 2 ;;
esac
array="0-$((shards - 1))"
[ -z "${MMER_CONCURRENT:-}" ] || array="$array%$MMER_CONCURRENT"

# MMER_SHARDS goes to the tasks too, so a task re-submitted alone
# (sbatch --array=3 ...) still knows N.
export MMER_SHARDS="$shards"

# --parsable prints "jobid" or "jobid;cluster".
extract_id="$(sbatch --parsable "${sbatch_extra[@]}" --array="$array" --export=ALL \
    "$here/extract.sbatch" "$@")"
extract_id="${extract_id%%;*}"
echo "submitted extract array $extract_id (shards 0..$((shards - 1)))"

# --kill-on-invalid-dep: if a task fails, the merge is cancelled instead of
# pending forever (DependencyNeverSatisfied); fix, re-run the task, then
# submit merge.sbatch again.
merge_id="$(sbatch --parsable "${sbatch_extra[@]}" --dependency="$after:$extract_id" \
    --kill-on-invalid-dep=yes --export=ALL "$here/merge.sbatch")"
merge_id="${merge_id%%;*}"
echo "submitted merge $merge_id (after $after:$extract_id)"
echo "watch: squeue -j $extract_id,$merge_id    logs: mmer-extract-${extract_id}_<i>.out, mmer-merge-$merge_id.out"
