"""How the server's costs grow: ONE knowledge base of `rag serve`, in steps up to 100k files.

Issue #25, the server half (scale_curve.py is the library half). A real `rag serve` (its
FastAPI app, SQLite database, embedded qdrant-edge store, loaders, chunking, sparse
encoder, job queue: all defaults but the data dir) is driven over loopback through the API
Open WebUI's clients use. ONE knowledge base grows, step by step (`--steps`), to each
step's number of files:

- SciFact documents (../shared/data/scifact/corpus.jsonl, "title\\n\\nabstract") are
  uploaded as distinct small text files (copy n of document d: "{d}-c{n}.txt", text tagged
  "(copy n)") through `POST /api/v1/files/` by `--concurrency` client threads; the client
  then polls `GET /api/v1/files/{id}/process/status` (as `rag push` does) until each is
  processed, and adds them with `POST /api/v1/knowledge/{id}/files/batch/add` (`--batch`
  files a call). Reported: upload requests/s and their latency, files processed/s (step
  start to the last one done), batch/add files/s, its per-call time and answer bytes;
- `--single-adds` more files are uploaded and added one by one with
  `POST /api/v1/knowledge/{id}/file/add`, as Open WebUI's UI adds each file (its answer
  lists every file of the knowledge base, as Open WebUI's does), so that the step ends
  with exactly its number of files;
- then, per call (p50/p95/max over `--reps` calls, the answer's bytes, the status codes):
  `GET /api/v1/knowledge/{id}/files` (and `?page=2`: whether paging is honoured),
  `GET /api/v1/knowledge/{id}`, `GET /api/v1/knowledge/`, `GET /api/v1/files/` (with the
  text, the default, and `?content=false`), `POST /api/v1/knowledge/{id}/sync/diff` with
  a manifest naming every file unchanged (SHA-256 of the uploaded bytes; request bytes
  too), `POST /api/v1/retrieval/query/collection` (k=10, dense and hybrid) over
  `--queries` SciFact test queries, `POST /api/chat/completions` with the knowledge base
  attached (`"files": [{"type": "collection", "id": KB}]`) over `--chats` queries (the
  size of the prompt the server sent upstream too);
- the server process's memory (VmRSS, VmHWM, RssAnon, RssFile from /proc) after the
  ingest, after the listings and at the end of the step, and the data dir on disk.

The question: does any endpoint's time or answer grow with the knowledge base per call
(a log-log slope near 1 in the summary: n such calls cost O(n^2))?

The MODEL IS A TEST DOUBLE and is not measured: an HTTP server in a thread of this process
speaks OpenAI's `/v1/embeddings` (each text's vector: a distinct unit Gaussian vector of
dimension 384 seeded by the text's BLAKE2b hash; `RAG_EMBEDDER=openai`) and
`/v1/chat/completions` + `/v1/models` (a short fixed answer; `RAG_OPENAI_API_BASE_URL`).
Everything else is the server's own. The server's log goes to server.log in the work dir
(its errors are counted into the JSON). A sync manifest takes ~140 bytes a file: under
the server's general body limit (RAG_MAX_REQUEST_BYTES, 8 MiB) a sync of ~60k files or
more was refused (413); sync/diff now has its own, RAG_MAX_MANIFEST_BYTES (128 MiB), and
`over_default_limit` records when a manifest is past the general one.

Run (the data dir takes ~35 KB a file, ~3.5 GB at 100k files):
    .venv/bin/python benchmarks/scale_server.py [--steps 1000 10000 100000] [--keep]
Smoke (~30 s): .venv/bin/python benchmarks/scale_server.py --steps 100 300 \\
    --out /tmp/scale_server_smoke.json
Writes benchmarks/results/scale_server.json after every step (a cut-off run keeps what it
measured) and scale_server.png beside it (`--out` moves both).

Time of the full run, EXTRAPOLATED from the smoke run (300 files, 2 cores busy with another
benchmark; nothing measured above 300 files): processing ~20-35 files/s -> ~50-80 min for
100k files if it stays flat; batch/add copies ~3.7 ms a file and its answer lists the whole
knowledge base (~0.07 ms and ~360 bytes a listed file), so the 100k step's 180 calls take
~20 min and its 20 file/add calls ~8 s each; listings and sync ~10 min. About 1.5-2 h in
all, longer if anything grows faster than measured at 300 files.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _serve import start_server

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
DIMENSION = 384
EMBED_MODEL = "hash-384"
CHAT_MODEL = "double-chat"
CHAT_ANSWER = "A fixed answer from the test double."
DEFAULT_REQUEST_LIMIT = 8 * 1024 * 1024  # RAG_MAX_REQUEST_BYTES's default
NOTE = (
    "the model is a test double, not measured: an OpenAI-compatible server in the benchmark "
    "process answers /v1/embeddings with distinct unit vectors of dimension 384 hashed from "
    "each text, and /v1/chat/completions with a short fixed answer; everything else (server, "
    "SQLite, embedded qdrant-edge store, extraction, chunking, sparse encoding) is real"
)


# -- the model's test double -------------------------------------------------------


def hashed_vector(text: str) -> list[float]:
    """A unit Gaussian vector seeded by the text's hash (6 decimals: shorter JSON)."""
    seed = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    vector = np.random.default_rng(int.from_bytes(seed, "little")).standard_normal(DIMENSION)
    return (vector / np.linalg.norm(vector)).round(6).tolist()


class ModelDouble:
    """OpenAI-compatible `/v1/embeddings`, `/v1/models` and `/v1/chat/completions`."""

    def __init__(self) -> None:
        self.texts = 0  # texts embedded
        self.requests: Counter[str] = Counter()
        self.last_chat_bytes = 0  # the body of the last chat request the server sent
        self.last_chat_messages = 0
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm on, the body
            # waits for the client's delayed ACK, ~40 ms a call on loopback (measured: a
            # retrieval query took 56 ms here, ~10 ms against a real model server).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                double.requests[f"GET {self.path}"] += 1
                if self.path.rstrip("/") == "/v1/models":
                    model = {"id": CHAT_MODEL, "object": "model", "created": 0, "owned_by": "x"}
                    self._answer(json.dumps({"object": "list", "data": [model]}).encode())
                else:
                    self._answer(b'{"error": "not found"}', 404)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                double.requests[f"POST {self.path}"] += 1
                body = json.loads(raw)
                if self.path == "/v1/embeddings":
                    texts = body["input"]
                    texts = [texts] if isinstance(texts, str) else texts
                    double.texts += len(texts)
                    data = [
                        {"object": "embedding", "index": i, "embedding": hashed_vector(text)}
                        for i, text in enumerate(texts)
                    ]
                    answer = {
                        "object": "list",
                        "model": body.get("model", EMBED_MODEL),
                        "data": data,
                        "usage": {"prompt_tokens": 0, "total_tokens": 0},
                    }
                    self._answer(json.dumps(answer).encode())
                elif self.path == "/v1/chat/completions":
                    double.last_chat_bytes = len(raw)
                    double.last_chat_messages = len(body.get("messages", []))
                    answer = {
                        "id": "chatcmpl-double",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", CHAT_MODEL),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": CHAT_ANSWER},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 8, "total_tokens": 8},
                    }
                    self._answer(json.dumps(answer).encode())
                else:
                    self._answer(b'{"error": "not found"}', 404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the server ----------------------------------------------------------------------


def server_memory(pid: int) -> dict[str, float]:
    """MB: the server's VmRSS, its peak (VmHWM), and VmRSS split into anon and file pages."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        key.lower(): round(int(status[key].split()[0]) / 1024, 1)
        for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile")
    }


def disk_mb(path: Path) -> dict[str, float]:
    """MB allocated under ``path``, in all and per entry at its top (db, uploads, store)."""
    parts: dict[str, float] = {}
    for entry in path.iterdir() if path.is_dir() else []:
        total = 0
        for dirpath, _, filenames in os.walk(entry) if entry.is_dir() else [("", [], [entry])]:
            for name in filenames:
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
        parts[entry.name] = round(total / 1e6, 1)
    return {"total": round(sum(parts.values()), 1), **dict(sorted(parts.items()))}


def log_errors(log: Path) -> dict[str, Any]:
    """Error lines of the server's log: tracebacks, 4xx/5xx access lines, ERROR records."""
    statuses: Counter[str] = Counter()
    tracebacks = 0
    samples: list[str] = []
    if not log.exists():
        return {"tracebacks": 0, "error_statuses": {}, "samples": []}
    with log.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            tracebacks += line.startswith("Traceback")
            # uvicorn's access lines: 'INFO:     127.0.0.1:1234 - "GET /x HTTP/1.1" 200 OK'
            parts = line.rstrip().rsplit('" ', 1)
            code = parts[-1].split(" ", 1)[0] if len(parts) == 2 else ""
            failed = code.isdigit() and int(code) >= 400
            statuses[code] += failed
            if (failed or line.startswith(("ERROR", "Traceback"))) and len(samples) < 20:
                samples.append(line.rstrip()[:300])
    codes = {code: count for code, count in sorted(statuses.items()) if count}
    return {"tracebacks": tracebacks, "error_statuses": codes, "samples": samples}


# -- data --------------------------------------------------------------------------


def load_corpus() -> list[tuple[str, str, str]]:
    """SciFact's (id, title, abstract) rows, in file order."""
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [(row["_id"], row["title"], row["text"]) for row in rows]


def load_queries(count: int) -> list[str]:
    """The first ``count`` SciFact test queries (ids from qrels/test.tsv, in order)."""
    ids: list[str] = []
    for line in (SCIFACT / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id = line.split("\t")[0]
        if query_id not in ids:
            ids.append(query_id)
    texts = {}
    for line in (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts[row["_id"]] = row["text"]
    return [texts[i] for i in ids[:count]]


@dataclass(slots=True)
class Uploaded:
    """One uploaded file, as a sync manifest names it."""

    file_id: str
    filename: str
    checksum: str
    size: int


def file_of(corpus: list[tuple[str, str, str]], index: int) -> tuple[str, bytes]:
    """The ``index``-th distinct file: copy n of document d."""
    copy, row = divmod(index, len(corpus))
    doc_id, title, text = corpus[row]
    return f"{doc_id}-c{copy}.txt", f"{title}\n\n{text} (copy {copy})\n".encode()


# -- measuring ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(
    times_ms: Sequence[float], sizes: Sequence[int], statuses: Sequence[int], request: int = 0
) -> dict[str, Any]:
    """p50/p95/max ms of calls, the median answer bytes, request bytes, status counts."""
    out: dict[str, Any] = {"calls": len(times_ms)}
    if times_ms:
        out.update(
            p50_ms=round(percentile(times_ms, 0.5), 2),
            p95_ms=round(percentile(times_ms, 0.95), 2),
            max_ms=round(max(times_ms), 2),
            answer_bytes=int(statistics.median(sizes)),
        )
    if request:
        out["request_bytes"] = request
    out["statuses"] = {str(k): v for k, v in sorted(Counter(statuses).items())}
    return out


def timed_call(
    client: httpx.Client, method: str, path: str, **kwargs: Any
) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.request(method, path, **kwargs)
    return (time.perf_counter() - start) * 1000, response


def repeat(
    client: httpx.Client,
    method: str,
    path: str,
    reps: int,
    budget_s: float,
    check: Callable[[httpx.Response], Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The same call ``reps`` times (fewer once ``budget_s`` is spent, at least once)."""
    times, sizes, statuses = [], [], []
    request = len(kwargs["content"]) if "content" in kwargs else 0
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    for _ in range(reps):
        ms, response = timed_call(client, method, path, **kwargs)
        times.append(ms)
        sizes.append(len(response.content))
        statuses.append(response.status_code)
        if response.status_code != 200:
            extra["error"] = response.text[:300]
        elif check is not None:
            extra.update(check(response) or {})
        if time.perf_counter() - started > budget_s:
            break
    return {**summary(times, sizes, statuses, request), **extra}


class Bench:
    """The client side: uploads, waits, adds and measures, against one knowledge base."""

    def __init__(
        self,
        url: str,
        token: str,
        args: argparse.Namespace,
        double: ModelDouble,
        pid: int,
        queries: list[str],
    ) -> None:
        self.url = url
        self.pid = pid  # the server's
        self.queries = queries
        self.memory_after_listings: dict[str, float] = {}
        self.headers = {"Authorization": f"Bearer {token}"}
        self.args = args
        self.double = double
        self.client = httpx.Client(base_url=url, headers=self.headers, timeout=1800)
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self.corpus = load_corpus()
        self.next_index = 0
        self.files: list[Uploaded] = []  # in the knowledge base
        self.kb = ""

    def _thread_client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.url, headers=self.headers, timeout=600)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        for client in [self.client, *self._clients]:
            client.close()

    def _upload_one(self, index: int) -> tuple[Uploaded | None, float, int]:
        name, data = file_of(self.corpus, index)
        files = {"file": (name, data, "text/plain")}
        ms, response = timed_call(self._thread_client(), "POST", "/api/v1/files/", files=files)
        if response.status_code != 200:
            return None, ms, response.status_code
        record = Uploaded(response.json()["id"], name, hashlib.sha256(data).hexdigest(), len(data))
        return record, ms, 200

    def upload(self, count: int) -> tuple[list[Uploaded], dict[str, Any]]:
        """Upload ``count`` new files with ``--concurrency`` threads; the files and timings."""
        indexes = range(self.next_index, self.next_index + count)
        self.next_index += count
        start = time.perf_counter()
        with ThreadPoolExecutor(self.args.concurrency) as pool:
            results = list(pool.map(self._upload_one, indexes))
        seconds = time.perf_counter() - start
        uploaded = [r for r, _, _ in results if r is not None]
        stats = summary([ms for _, ms, _ in results], [0], [s for _, _, s in results])
        stats.pop("answer_bytes", None)
        stats.update(s=round(seconds, 2), files_per_s=round(count / seconds, 1))
        return uploaded, stats

    def wait(self, files: list[Uploaded]) -> tuple[list[Uploaded], int]:
        """Poll each file's status, oldest first, until processed; the completed ones and
        how many status calls it took."""
        done, polls = [], 0
        for record in files:
            while True:
                response = self.client.get(f"/api/v1/files/{record.file_id}/process/status")
                polls += 1
                status = response.json().get("status") if response.status_code == 200 else None
                if status == "completed":
                    done.append(record)
                    break
                if status in ("failed", None):
                    print(f"  file {record.filename}: {response.text[:200]}", flush=True)
                    break
                time.sleep(0.25)
        return done, polls

    def ingest(self, count: int) -> dict[str, Any]:
        """Upload ``count`` files, wait for them, add them in batches."""
        start = time.perf_counter()
        uploaded, upload_stats = self.upload(count)
        done, polls = self.wait(uploaded)
        processed_s = time.perf_counter() - start
        times, sizes, statuses = [], [], []
        add_start = time.perf_counter()
        for i in range(0, len(done), self.args.batch):
            batch = done[i : i + self.args.batch]
            body = [{"file_id": r.file_id} for r in batch]
            ms, response = timed_call(
                self.client, "POST", f"/api/v1/knowledge/{self.kb}/files/batch/add", json=body
            )
            times.append(ms)
            sizes.append(len(response.content))
            statuses.append(response.status_code)
            if response.status_code == 200:
                self.files.extend(batch)
            else:
                print(f"  batch/add {response.status_code}: {response.text[:200]}", flush=True)
        add_s = time.perf_counter() - add_start
        batch_add = summary(times, sizes or [0], statuses)
        batch_add.update(
            s=round(add_s, 2),
            files_per_s=round(len(done) / add_s, 1) if add_s else 0,
            first_answer_bytes=sizes[0] if sizes else 0,
            last_answer_bytes=sizes[-1] if sizes else 0,
            last_ms=round(times[-1], 2) if times else 0,
            answer_bytes_total=sum(sizes),
        )
        return {
            "files": count,
            "upload": upload_stats,
            "processed": {
                "completed": len(done),
                "failed": len(uploaded) - len(done),
                "s": round(processed_s, 2),
                "files_per_s": round(len(done) / processed_s, 1) if processed_s else 0,
                "status_polls": polls,
            },
            "batch_add": batch_add,
        }

    def single_adds(self, count: int) -> dict[str, Any]:
        """Upload ``count`` files, wait, then add each with its own `file/add` call."""
        uploaded, _ = self.upload(count)
        done, _ = self.wait(uploaded)
        times, sizes, statuses = [], [], []
        for record in done:
            ms, response = timed_call(
                self.client,
                "POST",
                f"/api/v1/knowledge/{self.kb}/file/add",
                json={"file_id": record.file_id},
            )
            times.append(ms)
            sizes.append(len(response.content))
            statuses.append(response.status_code)
            if response.status_code == 200:
                self.files.append(record)
        return summary(times, sizes or [0], statuses)

    def measure(self) -> dict[str, Any]:
        """Every endpoint at the knowledge base's current size."""
        a, client, kb = self.args, self.client, self.kb
        n = len(self.files)
        out: dict[str, Any] = {}

        def count_items(response: httpx.Response) -> dict[str, Any]:
            body = response.json()
            return {"items": len(body["items"]) if isinstance(body, dict) else None}

        out["knowledge/{id}/files"] = repeat(
            client, "GET", f"/api/v1/knowledge/{kb}/files", a.reps, a.budget_s, count_items
        )
        out["knowledge/{id}/files?page=2"] = repeat(
            client,
            "GET",
            f"/api/v1/knowledge/{kb}/files",
            a.reps,
            a.budget_s,
            count_items,
            params={"page": 2},
        )
        out["knowledge/{id}"] = repeat(client, "GET", f"/api/v1/knowledge/{kb}", a.reps, a.budget_s)

        def file_count(response: httpx.Response) -> dict[str, Any]:
            items = response.json()["items"]
            return {"file_count": next(i["file_count"] for i in items if i["id"] == kb)}

        out["knowledge/"] = repeat(
            client, "GET", "/api/v1/knowledge/", a.reps, a.budget_s, file_count
        )
        out["files/"] = repeat(client, "GET", "/api/v1/files/", a.reps, a.budget_s, count_items)
        out["files/?page=2"] = repeat(
            client,
            "GET",
            "/api/v1/files/",
            a.reps,
            a.budget_s,
            count_items,
            params={"page": 2, "content": "false"},
        )
        out["files/?content=false"] = repeat(
            client,
            "GET",
            "/api/v1/files/",
            a.reps,
            a.budget_s,
            count_items,
            params={"content": "false"},
        )
        self.memory_after_listings = server_memory(self.pid)
        manifest = [
            {"filename": r.filename, "path": "", "checksum": r.checksum, "size": r.size}
            for r in self.files
        ]
        body = json.dumps({"manifest": manifest}).encode()

        def diff_check(response: httpx.Response) -> dict[str, Any]:
            diff = response.json()
            changed = sum(len(diff[k]) for k in ("added", "modified", "deleted"))
            return {"unmodified_count": diff["unmodified_count"], "changed": changed}

        out["sync/diff"] = repeat(
            client,
            "POST",
            f"/api/v1/knowledge/{kb}/sync/diff",
            a.reps,
            a.budget_s,
            diff_check,
            content=body,
            headers={"Content-Type": "application/json"},
        )
        out["sync/diff"]["over_default_limit"] = len(body) > DEFAULT_REQUEST_LIMIT
        for mode, hybrid in (("dense", False), ("hybrid", True)):
            times, sizes, statuses = [], [], []
            for i, query in enumerate([self.queries[0], *self.queries]):
                form = {"collection_names": [kb], "query": query, "k": 10, "hybrid": hybrid}
                ms, response = timed_call(
                    client, "POST", "/api/v1/retrieval/query/collection", json=form
                )
                if i == 0:
                    continue  # warm-up
                times.append(ms)
                sizes.append(len(response.content))
                statuses.append(response.status_code)
            out[f"query {mode}"] = summary(times, sizes, statuses)
        times, sizes, statuses, prompts, sources = [], [], [], [], []
        for i, query in enumerate([self.queries[0], *self.queries[: a.chats]]):
            form = {
                "model": CHAT_MODEL,
                "messages": [{"role": "user", "content": query}],
                "files": [{"type": "collection", "id": kb}],
                "stream": False,
            }
            ms, response = timed_call(client, "POST", "/api/chat/completions", json=form)
            if i == 0:
                continue  # warm-up (and the server's model listing)
            times.append(ms)
            sizes.append(len(response.content))
            statuses.append(response.status_code)
            prompts.append(self.double.last_chat_bytes)
            if response.status_code == 200:
                sources.append(sum(len(s["document"]) for s in response.json().get("sources", [])))
        out["chat"] = summary(times, sizes, statuses)
        out["chat"]["upstream_request_bytes"] = int(statistics.median(prompts)) if prompts else 0
        out["chat"]["source_chunks"] = int(statistics.median(sources)) if sources else 0
        assert n == len(self.files)
        return out


# -- reporting ---------------------------------------------------------------------


def endpoint_rows(step: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, stats) of every per-call measure of a step, uploads and adds first."""
    return [
        ("upload (POST files/)", step["ingest"]["upload"]),
        ("files/batch/add", step["ingest"]["batch_add"]),
        ("file/add", step["file_add"]),
        *step["endpoints"].items(),
    ]


def kb_text(size: float | None) -> str:
    return "-" if size is None else f"{size / 1000:,.1f}"


def step_table(step: dict[str, Any]) -> str:
    header = ["endpoint", "calls", "p50 ms", "p95 ms", "max ms", "answer KB", "req KB", "status"]
    rows = [header]
    for name, s in endpoint_rows(step):
        rows.append(
            [
                name,
                str(s["calls"]),
                f"{s.get('p50_ms', 0):,.1f}",
                f"{s.get('p95_ms', 0):,.1f}",
                f"{s.get('max_ms', 0):,.1f}",
                kb_text(s.get("last_answer_bytes", s.get("answer_bytes"))),
                kb_text(s.get("request_bytes")),
                ",".join(f"{k}x{v}" for k, v in s["statuses"].items()),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    ingest, mem = step["ingest"], step["memory"]
    head = (
        f"== {step['files']:,} files in the knowledge base (step {step['step_s']:.0f} s) ==\n"
        f"uploads {ingest['upload']['files_per_s']:,.1f}/s, processed "
        f"{ingest['processed']['files_per_s']:,.1f} files/s, batch/add "
        f"{ingest['batch_add']['files_per_s']:,.1f} files/s (last call answered "
        f"{kb_text(ingest['batch_add']['last_answer_bytes'])} KB); server RSS "
        f"{mem['end']['vmrss']:,.0f} MB, peak {mem['end']['vmhwm']:,.0f} MB; disk "
        f"{step['disk_mb']['total']:,.0f} MB"
    )
    return head + "\n" + "\n".join(lines)


def growth(steps: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Log-log slope of each endpoint's p50 ms and answer bytes, first to last step:
    ~0 constant, ~1 linear in the knowledge base per call (n calls: quadratic)."""
    if len(steps) < 2:
        return {}
    first, last = steps[0], steps[-1]
    span = math.log(last["files"] / first["files"])
    out: dict[str, dict[str, float | None]] = {}
    for (name, a), (_, b) in zip(endpoint_rows(first), endpoint_rows(last), strict=True):
        entry: dict[str, float | None] = {}
        for key, field in (("ms", "p50_ms"), ("bytes", "answer_bytes")):
            if key == "bytes" and "last_answer_bytes" in a:
                field = "last_answer_bytes"
            x, y = a.get(field), b.get(field)
            entry[f"{key}_slope"] = round(math.log(y / x) / span, 2) if x and y else None
        out[name] = entry
    return out


def plot(steps: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["files"] for s in steps]
    names = [name for name, _ in endpoint_rows(steps[0])]
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    markers = "osv^<>dpPhX*D"
    colors = plt.get_cmap("tab20").colors
    for index, name in enumerate(names):
        stats = [dict(endpoint_rows(s))[name] for s in steps]
        style = {
            "marker": markers[index % len(markers)],
            "color": colors[index % len(colors)],
            "label": name,
        }
        ms = [s.get("last_ms") or s.get("p50_ms") for s in stats]
        if all(ms):
            axes[0][0].plot(x, ms, **style)
        sizes = [s.get("last_answer_bytes") or s.get("answer_bytes") for s in stats]
        if all(sizes):
            axes[0][1].plot(x, sizes, **style)
    axes[0][0].set_title("per-call time, p50 ms (batch/add: the step's last call)")
    axes[0][1].set_title("answer bytes per call (batch/add: the step's last call)")
    ax = axes[1][0]
    ax.plot(x, [s["ingest"]["upload"]["files_per_s"] for s in steps], "o-", label="uploads/s")
    ax.plot(x, [s["ingest"]["processed"]["files_per_s"] for s in steps], "s-", label="processed/s")
    ax.plot(x, [s["ingest"]["batch_add"]["files_per_s"] for s in steps], "^-", label="batch/add")
    ax.set_title("ingest of the step, files/s")
    ax = axes[1][1]
    for key, style in (("vmrss", "o-"), ("vmhwm", "s--"), ("rssanon", "v:")):
        ax.plot(x, [s["memory"]["end"][key] for s in steps], style, label=f"server {key}")
    ax.plot(x, [s["disk_mb"]["total"] for s in steps], "^-", label="data dir on disk")
    ax.set_title("server memory and disk, MB")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("files in the knowledge base")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    title = textwrap.fill(f"rag serve, one knowledge base growing ({NOTE})", 160)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# -- main --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=4, help="upload threads")
    parser.add_argument("--batch", type=int, default=500, help="files per batch/add call")
    parser.add_argument("--single-adds", type=int, default=20, help="file/add calls a step")
    parser.add_argument("--reps", type=int, default=5, help="calls per listing/sync endpoint")
    parser.add_argument(
        "--budget-s", type=float, default=60.0, help="stop repeating an endpoint past this"
    )
    parser.add_argument("--queries", type=int, default=20, help="retrieval queries per mode")
    parser.add_argument("--chats", type=int, default=5, help="chat completions a step")
    parser.add_argument(
        "--max-request-mb",
        type=float,
        default=0,
        help="RAG_MAX_REQUEST_BYTES (0: the server's default, 8 MiB; sync/diff has its own "
        "RAG_MAX_MANIFEST_BYTES, 128 MiB)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (data, log)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale_server.json"
    )
    args = parser.parse_args()
    steps = sorted(args.steps)
    if steps[0] <= args.single_adds or any(
        b - a <= args.single_adds for a, b in itertools.pairwise(steps)
    ):
        parser.error("each step must add more files than --single-adds")
    work = Path(tempfile.mkdtemp(prefix="scale-server-"))
    data, log = work / "data", work / "server.log"
    double = ModelDouble()
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_EMBEDDER": "openai",
        "RAG_EMBEDDING_BASE_URL": double.url,
        "RAG_EMBEDDING_MODEL": EMBED_MODEL,
        "RAG_OPENAI_API_BASE_URL": double.url,
        "HF_HUB_OFFLINE": "1",
    }
    if args.max_request_mb:
        env["RAG_MAX_REQUEST_BYTES"] = str(int(args.max_request_mb * 1024 * 1024))
    results: dict[str, Any] = {
        "note": NOTE,
        "settings": {k: v for k, v in sorted(env.items()) if k.startswith("RAG_")},
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        "argv": sys.argv[1:],
        "steps": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(NOTE, flush=True)
    print(f"work dir: {work}", flush=True)
    started = time.perf_counter()
    server = None
    bench = None
    try:
        server, url = start_server(env, log)
        results["server_memory_start"] = server_memory(server.pid)
        signup = httpx.post(
            f"{url}/api/v1/auths/signup",
            json={"name": "bench", "email": "bench@example.com", "password": "bench-password"},
            timeout=60,
        )
        signup.raise_for_status()
        queries = load_queries(max(args.queries, args.chats))
        bench = Bench(url, signup.json()["token"], args, double, server.pid, queries)
        created = bench.client.post("/api/v1/knowledge/create", json={"name": "scale"})
        created.raise_for_status()
        bench.kb = created.json()["id"]
        for target in steps:
            step_start = time.perf_counter()
            texts_before = double.texts
            bulk = target - len(bench.files) - args.single_adds
            print(f"[{target:,}] uploading and adding {bulk:,} files", flush=True)
            ingest = bench.ingest(bulk)
            print(
                f"[{target:,}] processed {ingest['processed']['completed']:,} in"
                f" {ingest['processed']['s']:.1f} s, batch/add {ingest['batch_add']['s']:.1f} s",
                flush=True,
            )
            file_add = bench.single_adds(args.single_adds)
            memory_ingest = server_memory(server.pid)
            step: dict[str, Any] = {
                "target": target,
                "files": len(bench.files),
                "ingest": ingest,
                "file_add": file_add,
                "embedded_texts": double.texts - texts_before,
            }
            measure_start = time.perf_counter()
            step["endpoints"] = bench.measure()
            step["measure_s"] = round(time.perf_counter() - measure_start, 2)
            step["memory"] = {
                "after_ingest": memory_ingest,
                "after_listings": bench.memory_after_listings,
                "end": server_memory(server.pid),
            }
            step["disk_mb"] = disk_mb(data)
            step["loadavg"] = [round(v, 2) for v in os.getloadavg()]
            step["step_s"] = round(time.perf_counter() - step_start, 2)
            results["steps"].append(step)
            results["growth"] = growth(results["steps"])
            results["server_log"] = log_errors(log)
            results["total_s"] = round(time.perf_counter() - started, 2)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
            print(step_table(step), flush=True)
        plot(results["steps"], args.out.with_suffix(".png"))
    finally:
        if bench is not None:
            bench.close()
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        double.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{NOTE}\nper-call growth, log-log slope of p50 ms and answer bytes, first to last")
    print("step (~0: constant; ~1: linear per call, so n calls cost O(n^2)):")
    for name, entry in results.get("growth", {}).items():
        print(f"  {name:<30} ms {entry['ms_slope']}  bytes {entry['bytes_slope']}")
    errors = results.get("server_log", {})
    print(f"server log: {errors.get('tracebacks', 0)} tracebacks, {errors.get('error_statuses')}")
    print(f"total {results['total_s']:.0f} s; wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
