"""What a run indexes: source items (a file, or text already extracted) and the folder walk."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_pipeline.errors import ConfigError, LoaderError
from rag_pipeline.loaders import is_supported
from rag_pipeline.types import Document

# A file changed less than this long before it is looked at is not vouched for by its
# times: a later change within the same clock tick would leave them as they were (git's
# "racily clean" entries), so such a file gets no quick key and is hashed next time too.
RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One source to index: a file to extract, or documents already extracted.

    ``source`` is the name stored with every chunk; ``fingerprint`` (SHA-256) decides
    whether it changed since the last run and is computed once, here, when not given.
    ``key`` is its identity in the collection when names can repeat (a server's uploads:
    the file id; default: ``source``), and ``payload`` is stored with its chunks.
    """

    source: str
    path: Path | None = None
    documents: tuple[Document, ...] | None = None
    fingerprint: str | None = None
    key: str | None = None
    payload: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.documents is None):
            raise ConfigError(f"{self.source}: a source item needs a path or documents")

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], source: str | None = None, fingerprint: str | None = None
    ) -> SourceItem:
        """A file on disk, named ``source`` (default: its path)."""
        # Not Path(path) again: pathlib parses a Path it is given anew (~5 us a file).
        path = path if isinstance(path, Path) else Path(path)
        return cls(source=source or str(path), path=path, fingerprint=fingerprint)

    @classmethod
    def from_documents(cls, source: str, documents: Sequence[Document]) -> SourceItem:
        """Text already extracted (e.g. by a server), fingerprinted by its content."""
        return cls(source=source, documents=tuple(documents))

    @property
    def identity(self) -> str:
        """What the run tracks this source by: ``key``, else ``source``."""
        return self.key or self.source

    def size(self) -> int:
        """Bytes to read (a file) or characters held (documents); 0 if unknown."""
        if self.documents is not None:
            return sum(len(d.text) for d in self.documents)
        try:
            return self.path.stat().st_size if self.path is not None else 0
        except OSError:
            return 0

    def quick_key(self, now_ns: int | None = None) -> str | None:
        """``size:mtime_ns:ctime_ns:inode`` of the file, which a run stores with its chunks:
        when the next run finds the same, the file is unchanged without being read.

        rsync's and git's quick check: re-hashing every file was most of a re-run that
        found nothing changed (2-8 s of 100k small files, benchmarks/rerun_files.py). The
        change time and inode catch what keeps the size and modification time (a file
        replaced by another, a time set back). None for documents, a fingerprint given
        by the caller, what is not a regular file or cannot be examined, and a file
        changed in the last ``RACY_NS`` (see there).
        """
        if self.path is None or self.fingerprint is not None:
            return None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        now = time.time_ns() if now_ns is None else now_ns
        if max(info.st_mtime_ns, info.st_ctime_ns) > now - RACY_NS:
            return None
        return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"

    def resolve_fingerprint(self, max_bytes: int | None = None) -> str:
        """Return the fingerprint, computing it if it was not given.

        Only a regular file is opened (a FIFO blocks on open, a device never ends), and at
        most ``max_bytes`` of it are read: past that it is reported as too large.
        """
        if self.fingerprint is not None:
            return self.fingerprint
        if self.path is not None:
            try:
                if not self.path.is_file():
                    raise LoaderError(
                        self.source, "not a regular file (a FIFO, device or folder): skipped"
                    )
                return file_sha256(self.path, max_bytes)
            except OSError as exc:
                raise LoaderError(self.source, f"cannot read file: {exc.strerror or exc}") from exc
            except _TooLarge as exc:
                raise LoaderError(
                    self.source, f"file too large: more than {exc.limit} bytes"
                ) from None
        return documents_sha256(self.documents or ())


def walk_files(root: Path, *, supported_only: bool = True) -> Iterator[Path]:
    """Yield files under ``root`` in a stable order, skipping hidden entries; with
    ``supported_only``, only those a loader reads (an index names the others as failed)."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)  # parsed once a folder, not once a file
        for name in sorted(filenames):
            path = folder / name
            if not name.startswith(".") and (not supported_only or is_supported(path)):
                yield path


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


def file_sha256(path: Path, max_bytes: int | None = None) -> str:
    """Return the hex SHA-256 of a file's bytes (raise past ``max_bytes``, if given)."""
    digest = hashlib.sha256()
    read = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            read += len(block)
            if max_bytes is not None and read > max_bytes:
                raise _TooLarge(max_bytes)
            digest.update(block)
    return digest.hexdigest()


def documents_sha256(documents: Sequence[Document]) -> str:
    """Return the hex SHA-256 of documents' text and metadata."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.text.encode("utf-8"))
        digest.update(repr(sorted(document.metadata.items())).encode("utf-8"))
    return digest.hexdigest()
