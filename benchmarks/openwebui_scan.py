"""A 30-page scanned PDF and a scanned PNG through a stock Open WebUI 0.12.4, with and without
`rag serve`'s OCR behind ``CONTENT_EXTRACTION_ENGINE=external``.

Two runs, each from a fresh Open WebUI DATA_DIR (openwebui_plugin.py starts the servers):

* ``default``: Open WebUI's own loaders (PyPDFLoader for PDFs; images refused) and its MiniLM;
* ``plugged``: ``CONTENT_EXTRACTION_ENGINE=external`` at ``rag serve`` (``PUT /process``, which
  OCRs image-only pages with Tesseract), ``EXTERNAL_DOCUMENT_LOADER_API_KEY`` an ``sk-`` key;
  embeddings stay Open WebUI's own MiniLM. ``CONTENT_EXTRACTION_SUPPORTED_MEDIA_MIME_TYPES`` is
  left unset: 0.12.4's routers/files.py then hands images to an ``external`` engine.

The PDF is made at run time (in a temporary folder) from the first 10 scans of each of
shared/data/scans/{ko,en,ja}/docs (English in the middle, pages 11-20), one 200 dpi image per
page, no text layer. The PNG is ko_tydiqa-p1112.png (left out of the PDF). Per file: the
processing status and error, seconds from upload to a final status, the characters Open WebUI
stored as the file's content, when rag serve answered ``PUT /process``, and whether
``POST /api/v1/retrieval/query/collection`` (k=5, one knowledge base holding both files)
returns a ~6-word phrase of the reference text (exact after dropping whitespace, and fuzzy).

Run (Open WebUI in its own venv, see openwebui_plugin.py)::

    .venv/bin/python benchmarks/openwebui_scan.py --owui-python /tmp/owui-venv/bin/python

Writes benchmarks/results/openwebui_scan.json.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from openwebui_plugin import (
    OWUI_VERSION,
    RESULTS,
    SHARED,
    _add_to_knowledge,
    _error_lines,
    _owui_minilm_path,
    _owui_version,
    _stop,
    start_owui,
    start_rag,
)

SCANS = SHARED / "scans"
PNG = SCANS / "ko" / "docs" / "ko_tydiqa-p1112.png"
LANGS = ("ko", "en", "ja")  # page order: the English scans are the middle pages (11-20)
MIDDLE_PAGE = 16  # 1-based; its phrase is the one the run is judged by


def make_pdf(folder: Path) -> tuple[Path, list[Path]]:
    """The image-only 30-page PDF and the scans its pages come from, in page order."""
    import pypdfium2
    from PIL import Image

    sources = [
        path
        for lang in LANGS
        for path in sorted((SCANS / lang / "docs").iterdir())
        if path != PNG and path.suffix.lower() in {".pdf", ".png", ".jpg", ".jpeg", ".tiff"}
    ]
    sources = [p for lang in LANGS for p in [s for s in sources if s.parts[-3] == lang][:10]]
    pages = []
    for path in sources:
        if path.suffix.lower() == ".pdf":
            pages.append(pypdfium2.PdfDocument(path)[0].render(scale=200 / 72).to_pil())
        else:
            pages.append(Image.open(path))
    pages = [page.convert("L") for page in pages]
    out = folder / "scanned-30-pages.pdf"
    pages[0].save(out, save_all=True, append_images=pages[1:], resolution=200)
    return out, sources


def phrase(scan: Path) -> str:
    """About six words from the middle of a scan's reference text (20 characters where the
    text has no spaces)."""
    text = (scan.parents[1] / "text" / f"{scan.stem}.txt").read_text(encoding="utf-8")
    body = text.split("\n\n", 1)[-1]
    words = body.split()
    if len(words) >= 12:
        middle = len(words) // 2
        return " ".join(words[middle : middle + 6])
    squeezed = "".join(body.split())
    middle = len(squeezed) // 2
    return squeezed[middle : middle + 20]


def _squeeze(text: str) -> str:
    return "".join(text.split()).lower()


def fuzzy(needle: str, hay: str) -> float:
    """Best similarity of the needle to a same-length window of hay (whitespace dropped)."""
    needle, hay = _squeeze(needle), _squeeze(hay)
    if not needle or not hay:
        return 0.0
    size = len(needle)
    step = max(1, size // 4)
    starts = range(0, max(1, len(hay) - size + 1), step)
    return max(difflib.SequenceMatcher(None, needle, hay[i : i + size]).ratio() for i in starts)


class LogClock:
    """Stamps the lines a server appends to its log with the time they appeared."""

    def __init__(self, log: Path) -> None:
        self.log, self.lines, self._done = log, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        offset, rest = 0, b""
        while not self._done.wait(0.2):
            with self.log.open("rb") as handle:
                handle.seek(offset)
                block = handle.read()
            offset += len(block)
            *full, rest = (rest + block).split(b"\n")
            now = time.monotonic()
            self.lines += [(now, line.decode(errors="replace")) for line in full]

    def after(self, since: float, marker: str) -> tuple[float, str] | None:
        return next(((t, line) for t, line in self.lines if t >= since and marker in line), None)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def upload(client: httpx.Client, path: Path, mime: str, timeout: float) -> dict[str, Any]:
    """Upload a file and wait for its final processing status."""
    started = time.monotonic()
    answer = client.post("/api/v1/files/", files={"file": (path.name, path.read_bytes(), mime)})
    if answer.status_code != 200:
        return {"status": "upload failed", "error": f"HTTP {answer.status_code}: {answer.text}"}
    file_id = answer.json()["id"]
    state = None
    while time.monotonic() - started < timeout:
        state = client.get(f"/api/v1/files/{file_id}/process/status").json().get("status")
        if state in ("completed", "failed"):
            break
        time.sleep(0.5)
    seconds = round(time.monotonic() - started, 1)
    data = (client.get(f"/api/v1/files/{file_id}").json() or {}).get("data") or {}
    content = data.get("content") or ""
    return {
        "id": file_id,
        "started": started,
        "status": state if state in ("completed", "failed") else f"timeout ({state!r})",
        "error": data.get("error"),
        "seconds_to_final_status": seconds,
        "content_chars": len(content),
        "content": content,
    }


def query(client: httpx.Client, kb_id: str, text: str, filename: str) -> dict[str, Any]:
    """Whether the top 5 for a phrase hold it (exact without whitespace; fuzzy score)."""
    answer = client.post(
        "/api/v1/retrieval/query/collection",
        json={"collection_names": [kb_id], "query": text, "k": 5},
    )
    if answer.status_code != 200:
        return {"phrase": text, "error": f"HTTP {answer.status_code}: {answer.text[:300]}"}
    body = answer.json()
    docs = (body.get("documents") or [[]])[0]
    metas = (body.get("metadatas") or [[]])[0]
    hits = [
        {
            "file": (meta or {}).get("name"),
            "page": (meta or {}).get("page"),
            "exact": _squeeze(text) in _squeeze(doc),
            "fuzzy": round(fuzzy(text, doc), 3),
        }
        for doc, meta in zip(docs, metas, strict=False)
    ]
    exact = [rank for rank, hit in enumerate(hits, 1) if hit["file"] == filename and hit["exact"]]
    near = [
        rank for rank, hit in enumerate(hits, 1) if hit["file"] == filename and hit["fuzzy"] >= 0.8
    ]
    return {
        "phrase": text,
        "found_top5": bool(exact),
        "rank": exact[0] if exact else None,
        "found_top5_fuzzy_0.8": bool(near),
        "rank_fuzzy": near[0] if near else None,
        "hits": hits,
    }


def run(name: str, python: str, work: Path, env: dict[str, str], files: dict, args) -> dict:
    """One Open WebUI: upload both files, a knowledge base of them, the phrase queries."""
    proc, url, log = start_owui(python, work, name, env)
    result: dict[str, Any] = {"files": {}}
    try:
        with httpx.Client(base_url=url, timeout=args.timeout + 60) as client:
            signup = client.post(
                "/api/v1/auths/signup",
                json={"name": "Admin", "email": "admin@example.com", "password": "admin-password"},
            )
            signup.raise_for_status()
            client.headers["Authorization"] = f"Bearer {signup.json()['token']}"
            config = client.get("/api/v1/retrieval/config").json()
            result["owui_config"] = {
                key: config.get(key)
                for key in (
                    "CONTENT_EXTRACTION_ENGINE",
                    "EXTERNAL_DOCUMENT_LOADER_URL",
                    "CONTENT_EXTRACTION_SUPPORTED_MEDIA_MIME_TYPES",
                    "PDF_EXTRACT_IMAGES",
                    "CHUNK_SIZE",
                    "CHUNK_OVERLAP",
                    "TEXT_SPLITTER",
                    "ENABLE_RAG_HYBRID_SEARCH",
                )
            }
            done = {}
            for label, (path, mime, _) in files.items():
                print(f"[{name}] {label}: uploading {path.name}", flush=True)
                out = upload(client, path, mime, args.timeout)
                result["files"][label] = out
                if out.get("status") == "completed":
                    done[out["id"]] = path
                print(
                    f"[{name}] {label}: {out['status']} in {out.get('seconds_to_final_status')} s,"
                    f" {out.get('content_chars')} chars, error {out.get('error')!r}",
                    flush=True,
                )
            if done:
                kb_id, in_kb, failed = _add_to_knowledge(client, "scans", done, 10, log)
                result["knowledge"] = {"files": in_kb, "failures": failed}
                for label, (path, _, phrases) in files.items():
                    result["files"][label]["queries"] = [
                        {"page": page, **query(client, kb_id, text, path.name)}
                        for page, text in phrases
                    ]
    finally:
        _stop(proc)
        result["owui_log_errors"] = _error_lines(log)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owui-python", required=True, help="python of open-webui==0.12.4")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    version = _owui_version(args.owui_python)
    if version != OWUI_VERSION:
        raise SystemExit(f"{args.owui_python} has open-webui {version}, not {OWUI_VERSION}")

    work = Path(tempfile.mkdtemp(prefix="owui-scan-"))
    pdf, sources = make_pdf(work)
    picks = (5, MIDDLE_PAGE, 25)
    files = {
        "pdf_30_pages": (pdf, "application/pdf", [(p, phrase(sources[p - 1])) for p in picks]),
        "png": (PNG, "image/png", [(1, phrase(PNG))]),
    }
    results: dict[str, Any] = {
        "open_webui": version,
        "pdf": {
            "pages": len(sources),
            "bytes": pdf.stat().st_size,
            "page_sources": [str(p.relative_to(SCANS)) for p in sources],
            "judged_page": MIDDLE_PAGE,
        },
        "png": str(PNG.relative_to(SCANS)),
        "knowledge_add": "POST /api/v1/knowledge/{id}/files/batch/add (0.12.4's "
        "process_files_batch re-splits the file's stored content: knowledge chunks have no page)",
        "query": "POST /api/v1/retrieval/query/collection, k=5, the knowledge base of both files",
        "runs": {},
    }
    rag_proc = None
    try:
        base = {"RAG_EMBEDDING_MODEL": _owui_minilm_path(args.owui_python)}
        default = run("default", args.owui_python, work, base, files, args)
        results["runs"]["default"] = {"settings": base, **default}
        rag_proc, rag_url, key, rag_log = start_rag(work, Path(sys.executable).parent / "rag")
        env = {
            **base,
            "CONTENT_EXTRACTION_ENGINE": "external",
            "EXTERNAL_DOCUMENT_LOADER_URL": rag_url,
            "EXTERNAL_DOCUMENT_LOADER_API_KEY": key,
        }
        clock = LogClock(rag_log)
        plugged = run("plugged", args.owui_python, work, env, files, args)
        clock.stop()
        for out in plugged["files"].values():
            seen = clock.after(out.get("started", 0.0), "PUT /process")
            if seen:
                out["process_answered_after_s"] = round(seen[0] - out["started"], 1)
                out["process_log_line"] = seen[1].strip()
        pdf_out = plugged["files"]["pdf_30_pages"]
        if "process_answered_after_s" in pdf_out:
            pdf_out["process_s_per_page"] = round(pdf_out["process_answered_after_s"] / 30, 2)
        plugged["owui_config"]["EXTERNAL_DOCUMENT_LOADER_URL"] = "http://127.0.0.1:<port>"
        shown = {
            k: "sk-..." if "KEY" in k else v.replace(rag_url, "http://127.0.0.1:<port>")
            for k, v in env.items()
        }
        results["runs"]["plugged"] = {
            "settings": {**shown, "CONTENT_EXTRACTION_SUPPORTED_MEDIA_MIME_TYPES": "(unset)"},
            **plugged,
            "rag_serve_log_errors": _error_lines(rag_log),
            "rag_serve_log_tail": rag_log.read_text(errors="replace").splitlines()[-20:],
        }
    finally:
        _stop(rag_proc)
        for run_result in results["runs"].values():
            for out in run_result.get("files", {}).values():
                out.pop("started", None)
                out["content_head"] = out.pop("content", "")[:300]
        RESULTS.mkdir(parents=True, exist_ok=True)
        out_path = RESULTS / "openwebui_scan.json"
        out_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out_path}", flush=True)
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
