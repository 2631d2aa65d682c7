"""What a knowledge base's file listing costs in the server, without HTTP: the rows and the shapes.

`file/add`, `files/batch/add` and `GET /knowledge/{id}/files` answer with every file of the
knowledge base (Open WebUI's shape), so their time grows with it (benchmarks/
scale_server.py: 1.6 s a `file/add` at 30k files). This isolates the server's part:
``--files`` file rows and their links are inserted into a fresh SQLite database through
the server's own models, then `KnowledgeService`'s listing query (`_files_of`) and the
shape of each entry (`knowledge_file_entry`) are timed, best of ``--repeat``, and profiled
once (cProfile, top functions).

Run: .venv/bin/python benchmarks/knowledge_listing.py [--files 30000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from rag_pipeline.server.db import COMPLETED, Database, FileRecord, Knowledge, KnowledgeFile, User
from rag_pipeline.server.services.knowledge import _files_of
from rag_pipeline.server.shapes import knowledge_file_entry


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
        db.engine.dispose()


if __name__ == "__main__":
    main()
