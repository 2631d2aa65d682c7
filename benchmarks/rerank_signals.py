"""Tune and check the signal reranker (``/v1/rerank`` without a cross-encoder) offline.

Open WebUI's hybrid search hands its reranker the union of its whitespace-BM25 top k and its
dense top k (stock all-MiniLM-L6-v2) over chunks of 1,000 characters (100 overlap). This
script builds those same candidate sets without Open WebUI (our ONNX export of the same
MiniLM; BM25Okapi on ``text.split()``, as Open WebUI calls rank_bm25), then scores them:

* ``owui dense``: the union ordered by the stock model's cosine — what Open WebUI's hybrid
  mode does without a reranker (and what its dense mode ranks);
* ``signals w=…``: ``SignalReranker`` at each dense weight.

Tuning sets (``--split tune``): SciFact *train* queries, the odd-numbered half of
ko_tydiqa's queries. Report sets (``--split report``): SciFact *test* queries, the even half.
Per query: nDCG@10 of the documents (a document ranks where its best chunk ranks).

Run: .venv/bin/python benchmarks/rerank_signals.py [--sets scifact ko] [--split tune|report]
     [--weights 0 0.3 0.5 0.7 1] [--k 10] [--limit 300]
Embeddings are cached in /tmp/rerank_signals (a first run embeds every chunk: minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag_pipeline.embedding.cache import CachedEmbedder  # noqa: E402
from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder  # noqa: E402
from rag_pipeline.embedding.onnx import OnnxEmbedder  # noqa: E402
from rag_pipeline.embedding.sparse import SparseEncoder  # noqa: E402
from rag_pipeline.evaluation.metrics import evaluate  # noqa: E402
from rag_pipeline.retrieval.signals import SignalReranker  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = Path("/tmp/rerank_signals")


def chunks_of(text: str, size: int = 1000, overlap: int = 100) -> list[str]:
    """Character windows, as Open WebUI's default splitter cuts plain text (roughly)."""
    if len(text) <= size:
        return [text]
    return [text[i : i + size] for i in range(0, len(text) - overlap, size - overlap)]


def load(name: str, split: str) -> tuple[list[str], list[str], dict, dict]:
    folder = DATA / name
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    texts, owners = [], []
    for row in corpus:
        body = f"{row.get('title', '')}\n\n{row['text']}".strip()
        for piece in chunks_of(body):
            texts.append(piece)
            owners.append(str(row["_id"]))
    queries = {
        str(r["_id"]): r["text"]
        for r in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))
    }
    if name == "scifact":
        qrel_file = folder / "qrels" / ("train.tsv" if split == "tune" else "test.tsv")
    else:
        qrel_file = folder / "qrels" / "dev.tsv"
    qrels: dict[str, dict[str, int]] = {}
    for line in qrel_file.read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")[:3]
        qrels.setdefault(qid, {})[did] = int(score)
    if name != "scifact":
        ordered = sorted(qrels)
        keep = ordered[1::2] if split == "tune" else ordered[0::2]
        qrels = {q: qrels[q] for q in keep}
    return texts, owners, {q: queries[q] for q in qrels}, qrels


class Bm25Whitespace:
    """BM25Okapi (k1 1.5, b 0.75, rank_bm25's defaults) over ``text.split()`` tokens."""

    def __init__(self, texts: list[str]) -> None:
        self.docs = [t.split() for t in texts]
        self.lengths = np.array([len(d) for d in self.docs], dtype=np.float32)
        self.avg = float(self.lengths.mean())
        self.postings: dict[str, dict[int, int]] = {}
        for i, doc in enumerate(self.docs):
            for token in doc:
                self.postings.setdefault(token, {}).setdefault(i, 0)
                self.postings[token][i] += 1
        n = len(self.docs)
        self.idf = {
            t: math.log(n - len(p) + 0.5) - math.log(len(p) + 0.5) for t, p in self.postings.items()
        }
        eps = 0.25 * (sum(self.idf.values()) / len(self.idf))
        self.idf = {t: (v if v >= 0 else eps) for t, v in self.idf.items()}

    def top(self, query: str, k: int) -> list[int]:
        scores = np.zeros(len(self.docs), dtype=np.float32)
        for token in query.split():
            for i, tf in self.postings.get(token, {}).items():
                norm = 1.5 * (1 - 0.75 + 0.75 * self.lengths[i] / self.avg)
                scores[i] += self.idf[token] * tf * 2.5 / (tf + norm)
        return list(np.argsort(-scores, kind="stable")[:k])


def embed_all(embedder: object, texts: list[str], key: str) -> np.ndarray:
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)  # type: ignore[attr-defined]
    print(f"  embedded {len(texts)} chunks for {key} in {time.perf_counter() - started:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def primed(embedder: object, texts: list[str], vectors: np.ndarray) -> CachedEmbedder:
    """A cache already holding every chunk's vector (what the study would embed anyway)."""
    cached = CachedEmbedder(embedder, max_entries=len(texts) + 10)  # type: ignore[arg-type]
    from rag_pipeline.embedding.cache import _key

    assert cached._cache is not None
    for text, vector in zip(texts, vectors, strict=True):
        cached._cache[_key(text)] = vector
    return cached


def run_set(name: str, split: str, weights: list[float], k: int, limit: int) -> dict:
    texts, owners, queries, qrels = load(name, split)
    if limit:
        chosen = sorted(queries)[:limit]
        queries = {q: queries[q] for q in chosen}
        qrels = {q: qrels[q] for q in chosen}
    print(f"{name}/{split}: {len(texts)} chunks, {len(queries)} queries")
    models = CACHE / "models"
    minilm = OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=models)
    stock = embed_all(minilm, texts, f"{name}-minilm")
    bm25 = Bm25Whitespace(texts)
    e5 = E5OnnxEmbedder(cache_dir=models)
    if name != "scifact":
        e5_vectors = embed_all(e5, texts, f"{name}-e5")
        e5 = primed(e5, texts, e5_vectors)
    minilm_cached = primed(minilm, texts, stock)
    sparse = SparseEncoder("en")

    def ranked(candidates: list[int], scores: np.ndarray) -> dict[str, float]:
        order = np.argsort(-scores, kind="stable")
        run: dict[str, float] = {}
        for rank, position in enumerate(order):
            doc = owners[candidates[position]]
            run.setdefault(doc, float(len(order) - rank))
        return run

    runs: dict[str, dict[str, dict[str, float]]] = {"owui dense": {}}
    timing: dict[str, list[float]] = {}
    for weight in weights:
        runs[f"signals w={weight:g}"] = {}
    sizes = []
    for qid, text in queries.items():
        q = minilm.embed_query(text)
        dense_top = list(np.argsort(-(stock @ q))[:k])
        candidates = list(dict.fromkeys(bm25.top(text, k) + dense_top))
        sizes.append(len(candidates))
        runs["owui dense"][qid] = ranked(candidates, stock[candidates] @ q)
        docs = [texts[i] for i in candidates]
        for weight in weights:
            reranker = SignalReranker(minilm_cached, sparse, multilingual=e5, dense_weight=weight)
            started = time.perf_counter()
            scores = reranker.score(text, docs)
            timing.setdefault(f"signals w={weight:g}", []).append(time.perf_counter() - started)
            runs[f"signals w={weight:g}"][qid] = ranked(candidates, scores)
    result = {"set": name, "split": split, "queries": len(queries), "chunks": len(texts)}
    result["candidates_mean"] = round(statistics.mean(sizes), 1)
    result["ndcg@10"] = {
        label: round(evaluate(qrels, run)["ndcg@10"], 4) for label, run in runs.items()
    }
    result["scoring_ms_p50_cached"] = {
        label: round(statistics.median(values) * 1000, 1) for label, values in timing.items()
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["scifact", "ko_tydiqa"])
    parser.add_argument("--split", choices=["tune", "report"], default="tune")
    parser.add_argument("--weights", nargs="+", type=float, default=[0, 0.3, 0.4, 0.5, 0.7, 1])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="queries per set (0: all)")
    args = parser.parse_args()
    results = [run_set(s, args.split, args.weights, args.k, args.limit) for s in args.sets]
    print(json.dumps(results, indent=2, ensure_ascii=False))
    out = ROOT / "benchmarks" / "results" / f"rerank_signals_{args.split}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
