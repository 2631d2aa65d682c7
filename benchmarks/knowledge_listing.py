"""What a knowledge base's file listing costs in the server, without HTTP: the rows and the shapes.

`file/add`, `files/batch/add` and `GET /knowledge/{id}/files` answer with every file of the
knowledge base (Open WebUI's shape), so their time grows with it (benchmarks/
scale_server.py: 1.6 s a `file/add` at 30k files). This isolates the server's part:
``--files`` file rows and their links are inserted into a fresh SQLite database through
the server's own models, then `KnowledgeService`'s listing query (`_files_of`) and the
shape of each entry (`knowledge_file_entry`) are timed, best of ``--repeat``, and profiled
once (cProfile, top functions).

Pages (Open WebUI's `?page=N`, 30 files a page, 50 for `/files/`): `KnowledgeService.files`
and `FileService.list` (each with its count) at page 2, the middle and the last page, best
of ``--repeat``; since the listing-order indexes (migration 0004) a page is read from an
index, and only its offset grows with the depth.

Run: .venv/bin/python benchmarks/knowledge_listing.py [--files 30000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from rag_pipeline.server.db import COMPLETED, Database, FileRecord, Knowledge, KnowledgeFile, User
from rag_pipeline.server.services.files import FileService
from rag_pipeline.server.services.knowledge import KnowledgeService, _files_of
from rag_pipeline.server.settings import ServerSettings
from rag_pipeline.server.shapes import knowledge_file_entry
from rag_pipeline.store import EdgeStore


def fill(db: Database, count: int) -> None:
    with db.session() as session:
        session.add(User(id="u", name="u", email="u@example.com", role="admin", password_hash="x"))
        session.flush()
        session.add(Knowledge(id="kb", user_id="u", name="kb", description=""))
        session.flush()
        files = [
            {
                "id": f"{i:036d}",
                "user_id": "u",
                "filename": f"file-{i}.txt",
                "path": f"/uploads/{i}",
                "content_type": "text/plain",
                "size": 1500,
                "file_hash": f"{i:064x}",
                "content_hash": f"{i:064x}",
                "content": "text " * 300,
                "status": COMPLETED,
                "chunks": 2,
                "queued_at": float(i),
                "created_at": i,
                "updated_at": i,
            }
            for i in range(count)
        ]
        session.execute(FileRecord.__table__.insert(), files)
        links = [
            {
                "knowledge_id": "kb",
                "file_id": f"{i:036d}",
                "state": "copied",
                "path": "",
                "created_at": i,
            }
            for i in range(count)
        ]
        session.execute(KnowledgeFile.__table__.insert(), links)


def listing(db: Database) -> tuple[float, float, int]:
    start = time.perf_counter()
    with db.session() as session:
        rows = _files_of(session, "kb")
        queried = time.perf_counter() - start
        entries = [knowledge_file_entry(row, "kb") for row in rows]
    return queried, time.perf_counter() - start, len(entries)


def pages(db: Database, folder: Path, count: int, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` ms of a page at page 2, the middle and the end, both listings."""
    store = EdgeStore(folder / "store")  # the knowledge service's; a listing does not touch it
    knowledge = KnowledgeService(db, store)
    # Listing needs the database alone: no processor or queue.
    files = FileService(db, ServerSettings(), None, None, knowledge)  # type: ignore[arg-type]
    with db.session() as session:
        admin = session.get(User, "u")
        assert admin is not None
    out: dict[str, Any] = {}
    for name, size, call in (
        ("knowledge_files", 30, lambda skip: knowledge.files(admin, "kb", skip=skip, limit=30)),
        ("files", 50, lambda skip: files.list(admin, content=False, skip=skip, limit=50)),
    ):
        for label, skip in (("page 2", size), ("middle", count // 2), ("last", count - size)):
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                answer = call(skip)
                best = min(best, time.perf_counter() - start)
            assert answer[-1] == count, answer[-1]
            out[f"{name} {label}"] = round(best * 1000, 1)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'listing.db'}")
        fill(db, args.files)
        runs = [listing(db) for _ in range(args.repeat)]
        queried, total, count = min(runs, key=lambda run: run[1])
        print(f"{count:,} files: query {queried * 1000:.0f} ms, with shapes {total * 1000:.0f} ms")
        profile = cProfile.Profile()
        profile.enable()
        listing(db)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(8)
        for label, ms in pages(db, Path(folder), args.files, args.repeat).items():
            print(f"{label}: {ms} ms")
        db.engine.dispose()


if __name__ == "__main__":
    main()
