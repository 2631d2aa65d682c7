"""Push folders into a remote knowledge base, uploading only content the server lacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pipeline.client._client import RagClient
from rag_pipeline.errors import RemoteError
from rag_pipeline.ingest import file_sha256, walk_files

# Processed files added to the knowledge base per call.
ADD_GROUP = 64
# progress(path, status): status is "uploaded", "skipped", "added" or "failed".
PushProgress = Callable[[str, str], None]


@dataclass
class PushReport:
    """What a push did, file by file (the shape of ``rag index --json``)."""

    knowledge_id: str
    knowledge: str
    server: str
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every file made it."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON printed by ``rag push --json``."""
        return {
            "knowledge_id": self.knowledge_id,
            "knowledge": self.knowledge,
            "server": self.server,
            "files": {
                "added": len(self.added),
                "skipped": len(self.skipped),
                "uploaded": len(self.uploaded),
                "failed": len(self.errors),
            },
            "errors": list(self.errors),
            "seconds": round(self.seconds, 3),
        }


def local_files(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Every supported file under ``paths`` with the name to report it by."""
    found: list[tuple[Path, str]] = []
    for root in paths:
        root = root.resolve()
        base = root.parent if root.is_file() else root
        for file in walk_files(root):
            found.append((file, file.relative_to(base).as_posix()))
    return found


def _hash_of(file: dict[str, Any]) -> str | None:
    return (file.get("meta") or {}).get("file_hash")


def push(
    client: RagClient,
    paths: Sequence[Path],
    knowledge: str,
    *,
    progress: PushProgress | None = None,
    timeout: float = 1800.0,
    concurrency: int = 4,
) -> PushReport:
    """Upload the files under ``paths`` into the knowledge base named ``knowledge``.

    Files whose bytes (SHA-256) the knowledge base already holds are skipped; files the
    server already has elsewhere are added without uploading them again. ``concurrency``
    requests are in flight at once.
    """
    started = time.perf_counter()
    notify = progress or (lambda path, status: None)
    target = client.find_knowledge(knowledge) or client.create_knowledge(knowledge)
    report = PushReport(knowledge_id=target["id"], knowledge=knowledge, server=client.base_url)
    in_knowledge = {_hash_of(f) for f in client.knowledge_files(target["id"])}
    on_server = {
        _hash_of(f): f
        for f in client.files()
        if (f.get("data") or {}).get("status") != "failed" and _hash_of(f)
    }
    waiting: list[tuple[str, str]] = []  # (name, file id)
    to_upload: list[tuple[Path, str]] = []
    for path, name in local_files(paths):
        try:
            digest = file_sha256(path)
        except OSError as exc:
            report.errors.append({"path": name, "error": f"cannot read file: {exc}"})
            notify(name, "failed")
            continue
        if digest in in_knowledge:
            report.skipped.append(name)
            notify(name, "skipped")
            continue
        in_knowledge.add(digest)
        known = on_server.get(digest)
        if known is not None:
            waiting.append((name, known["id"]))
        else:
            to_upload.append((path, name))

    def upload(item: tuple[Path, str]) -> tuple[str, dict[str, Any] | RemoteError]:
        try:
            return item[1], client.upload(item[0])
        except RemoteError as exc:  # an AuthError is not one: it ends the push
            return item[1], exc

    # A few requests in flight keep a server's processing threads fed; one at a time,
    # each upload waited on the network and on the server's bookkeeping.
    with ThreadPoolExecutor(concurrency) as pool:
        for name, uploaded in pool.map(upload, to_upload):
            if isinstance(uploaded, RemoteError):
                report.errors.append({"path": name, "error": str(uploaded)})
                notify(name, "failed")
                continue
            report.uploaded.append(name)
            notify(name, "uploaded")
            waiting.append((name, uploaded["id"]))
    deadline = time.monotonic() + timeout

    def processed(item: tuple[str, str]) -> RemoteError | None:
        try:
            status = client.wait(item[1], timeout=max(1.0, deadline - time.monotonic()))
        except RemoteError as exc:
            return exc
        if status.get("status") != "completed":
            return RemoteError(status.get("error") or f"processing {status.get('status')}")
        return None

    def add(done: list[tuple[str, str]]) -> None:
        # One call per group: every add answers with the whole knowledge base's file
        # list (Open WebUI's shape), so one add per file cost O(files²) on both sides.
        if not done:
            return
        try:
            client.add_files(target["id"], [file_id for _, file_id in done])
            errors: list[RemoteError | None] = [None] * len(done)
        except RemoteError:  # e.g. one file deleted meanwhile: find which, add the rest
            errors = []
            for _, file_id in done:
                try:
                    client.add_file(target["id"], file_id)
                    errors.append(None)
                except RemoteError as exc:
                    errors.append(exc)
        for (name, _), error in zip(done, errors, strict=True):
            if error is not None:
                report.errors.append({"path": name, "error": str(error)})
                notify(name, "failed")
            else:
                report.added.append(name)
                notify(name, "added")

    done: list[tuple[str, str]] = []
    with ThreadPoolExecutor(concurrency) as pool:
        for item, error in zip(waiting, pool.map(processed, waiting), strict=True):
            if error is not None:
                report.errors.append({"path": item[0], "error": str(error)})
                notify(item[0], "failed")
                continue
            done.append(item)
            if len(done) >= ADD_GROUP:
                add(done)
                done = []
    add(done)
    report.seconds = time.perf_counter() - started
    return report
