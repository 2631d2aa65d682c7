#!/usr/bin/env bash
# Where `rag index` spends its time on the GPU machine: `bash benchmarks/device/profile.sh`
# (carry .devbundle, see build.sh). The same set-up as run.sh, then full SciFact indexed
# three times: plain (/usr/bin/time), under py-spy (all processes), under cProfile.
source "$(dirname "$0")/setup.sh"

rm -rf /tmp/docs /tmp/d1 /tmp/d2 /tmp/d3 /tmp/pyspy
step "py-spy"
"$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/pyspy .devbundle/whl/py_spy-*.whl
PYSPY=/tmp/pyspy/bin/py-spy
[[ -x $PYSPY ]] || PYSPY=$(ls /tmp/pyspy/*/py-spy /tmp/pyspy/bin/* 2>/dev/null | head -1)
echo "py-spy at $PYSPY"
step "docs"
"$PY" - <<'EOF2'
import gzip, json
from pathlib import Path
docs = Path("/tmp/docs"); docs.mkdir(exist_ok=True)
import os
limit = int(os.environ.get("DOCS_LIMIT", "0"))
for i, line in enumerate(gzip.open(".devbundle/scifact-corpus.jsonl.gz", "rt")):
    if limit and i >= limit:
        break
    row = json.loads(line)
    (docs / f"{row['_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}\n")
print(len(list(docs.iterdir())), "docs")
EOF2
RAG="from rag_pipeline.cli import main; main()"
mkdir -p "${OUT:-/tmp/out}"
O=${OUT:-/tmp/out}
step "plain run 1"
RAG_DATA_DIR=/tmp/d1 RAG_MODEL_CACHE_DIR=/tmp/models /usr/bin/time -v "$PY" -c "$RAG" index /tmp/docs -k bench --json > $O/plain1.json 2> $O/plain1.time || true
tail -c 300 $O/plain1.json; grep -E "Elapsed|Maximum resident|Percent of CPU" $O/plain1.time || true
step "py-spy run"
RAG_DATA_DIR=/tmp/d2 RAG_MODEL_CACHE_DIR=/tmp/models timeout 200 $PYSPY record -r 40 --subprocesses --threads --idle -f raw -o $O/pyspy.txt -- "$PY" -c "$RAG" index /tmp/docs -k bench --json > $O/pyspy_run.json 2>&1 || echo "py-spy failed: $(tail -5 $O/pyspy_run.json)"
tail -c 300 $O/pyspy_run.json
step "cProfile main process"
RAG_DATA_DIR=/tmp/d3 RAG_MODEL_CACHE_DIR=/tmp/models "$PY" -c "import cProfile,sys; sys.argv=['rag','index','/tmp/docs','-k','bench','--json']; from rag_pipeline.cli import main; cProfile.run('main()', '$O/main.prof')" > $O/cprof_run.json 2>&1 || true
tail -c 300 $O/cprof_run.json
"$PY" -c "import pstats; pstats.Stats('$O/main.prof').sort_stats('cumulative').print_stats(35)" > $O/main_cum.txt 2>&1 || true
head -80 $O/main_cum.txt
step "done"
