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
# progress(path, status): status is "uploaded", "skipped", "added", "removed" or "failed".
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
    # Gone locally, so taken out of the knowledge base (servers with knowledge sync).
    removed: list[str] = field(default_factory=list)
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
                "removed": len(self.removed),
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


@dataclass(frozen=True, slots=True)
class _Local:
    path: Path
    name: str  # relative path, "docs/a.md"
    digest: str

    @property
    def folder(self) -> str:
        return self.name.rpartition("/")[0]

    @property
    def filename(self) -> str:
        return self.name.rpartition("/")[2]


def push(
    client: RagClient,
    paths: Sequence[Path],
    knowledge: str,
    *,
    progress: PushProgress | None = None,
    timeout: float = 1800.0,
    concurrency: int = 4,
) -> PushReport:
    """Make the knowledge base named ``knowledge`` hold the files under ``paths``.

    With a server that offers knowledge sync (``rag serve``, Open WebUI ≥ 0.9.6), its
    ``sync/diff`` says what changed: new and changed files are uploaded, and files that
    were changed or are gone locally are removed (``sync/cleanup``). Elsewhere, files whose
    bytes (SHA-256) the knowledge base already holds are skipped and nothing is removed.
    Files the server already has are added without uploading them again. ``concurrency``
    requests are in flight at once.
    """
    started = time.perf_counter()
    notify = progress or (lambda path, status: None)
    target = client.find_knowledge(knowledge) or client.create_knowledge(knowledge)
    report = PushReport(knowledge_id=target["id"], knowledge=knowledge, server=client.base_url)
    local: list[_Local] = []
    for path, name in local_files(paths):
        try:
            local.append(_Local(path, name, file_sha256(path)))
        except OSError as exc:
            report.errors.append({"path": name, "error": f"cannot read file: {exc}"})
            notify(name, "failed")
    wanted, stale, gone = _plan(client, target["id"], local)
    for item in local:
        if item not in wanted:
            report.skipped.append(item.name)
            notify(item.name, "skipped")
    _upload_and_add(client, target["id"], wanted, report, notify, timeout, concurrency)
    if stale and not report.errors:
        # Removed only once their replacements are in: a failed run leaves the old ones.
        client.sync_cleanup(target["id"], [file_id for file_id, _ in stale])
        report.removed.extend(name for _, name in stale if name in gone)
        for name in gone:
            notify(name, "removed")
    report.seconds = time.perf_counter() - started
    return report


def _plan(
    client: RagClient, knowledge_id: str, local: list[_Local]
) -> tuple[list[_Local], list[tuple[str, str]], set[str]]:
    """(files to upload or add, (file id, name) to remove afterwards, names gone locally)."""
    manifest = [
        {
            "filename": i.filename,
            "path": i.folder,
            "checksum": i.digest,
            "size": i.path.stat().st_size,
        }
        for i in local
    ]
    diff = client.sync_diff(knowledge_id, manifest)
    if diff is None or diff.get("mkdir"):
        # No sync here, or one that wants folders made first (Open WebUI's directories):
        # skip what the knowledge base holds by content, remove nothing.
        held = {_hash_of(f) for f in client.knowledge_files(knowledge_id)}
        wanted, seen = [], set()
        for item in local:
            if item.digest not in held and item.digest not in seen:
                wanted.append(item)
                seen.add(item.digest)
        return wanted, [], set()
    changed = {(e["path"], e["filename"]) for e in [*diff["added"], *diff["modified"]]}
    wanted = [i for i in local if (i.folder, i.filename) in changed]
    stale = [(e["stale_file_id"], e["filename"]) for e in diff["modified"]]
    gone = [(e["file_id"], e["filename"]) for e in diff["deleted"]]
    return wanted, stale + gone, {name for _, name in gone}


def _upload_and_add(
    client: RagClient,
    knowledge_id: str,
    wanted: list[_Local],
    report: PushReport,
    notify: PushProgress,
    timeout: float,
    concurrency: int,
) -> None:
    on_server = {
        _hash_of(f): f
        for f in client.files()
        if (f.get("data") or {}).get("status") != "failed" and _hash_of(f)
    }
    waiting: list[tuple[_Local, str]] = []  # (file, its id on the server)
    to_upload: list[_Local] = []
    for item in wanted:
        known = on_server.get(item.digest)
        if known is not None:
            waiting.append((item, known["id"]))
        else:
            to_upload.append(item)

    def upload(item: _Local) -> tuple[_Local, dict[str, Any] | RemoteError]:
        try:
            return item, client.upload(item.path)
        except RemoteError as exc:  # an AuthError is not one: it ends the push
            return item, exc

    # A few requests in flight keep a server's processing threads fed; one at a time,
    # each upload waited on the network and on the server's bookkeeping.
    with ThreadPoolExecutor(concurrency) as pool:
        for item, uploaded in pool.map(upload, to_upload):
            if isinstance(uploaded, RemoteError):
                report.errors.append({"path": item.name, "error": str(uploaded)})
                notify(item.name, "failed")
                continue
            report.uploaded.append(item.name)
            notify(item.name, "uploaded")
            waiting.append((item, uploaded["id"]))
    deadline = time.monotonic() + timeout

    def processed(entry: tuple[_Local, str]) -> RemoteError | None:
        try:
            status = client.wait(entry[1], timeout=max(1.0, deadline - time.monotonic()))
        except RemoteError as exc:
            return exc
        if status.get("status") != "completed":
            return RemoteError(status.get("error") or f"processing {status.get('status')}")
        return None

    def add(done: list[tuple[_Local, str]]) -> None:
        # One call per group: every add answers with the whole knowledge base's file
        # list (Open WebUI's shape), so one add per file cost O(files²) on both sides.
        if not done:
            return
        try:
            client.add_files(knowledge_id, [i for _, i in done], [f.folder for f, _ in done])
            errors: list[RemoteError | None] = [None] * len(done)
        except RemoteError:  # e.g. one file deleted meanwhile: find which, add the rest
            errors = []
            for item, file_id in done:
                try:
                    client.add_files(knowledge_id, [file_id], [item.folder])
                    errors.append(None)
                except RemoteError as exc:
                    errors.append(exc)
        for (item, _), error in zip(done, errors, strict=True):
            if error is not None:
                report.errors.append({"path": item.name, "error": str(error)})
                notify(item.name, "failed")
            else:
                report.added.append(item.name)
                notify(item.name, "added")

    done: list[tuple[_Local, str]] = []
    with ThreadPoolExecutor(concurrency) as pool:
        for entry, error in zip(waiting, pool.map(processed, waiting), strict=True):
            if error is not None:
                report.errors.append({"path": entry[0].name, "error": str(error)})
                notify(entry[0].name, "failed")
                continue
            done.append(entry)
            if len(done) >= ADD_GROUP:
                add(done)
                done = []
    add(done)
