"""What a run indexes: source items (a file, or text already extracted) and the folder walk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_pipeline.errors import ConfigError, LoaderError
from rag_pipeline.loaders import is_supported
from rag_pipeline.types import Document


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
        path = Path(path)
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

    def resolve_fingerprint(self) -> str:
        """Return the fingerprint, computing it if it was not given."""
        if self.fingerprint is not None:
            return self.fingerprint
        if self.path is not None:
            try:
                return file_sha256(self.path)
            except OSError as exc:
                raise LoaderError(self.source, f"cannot read file: {exc.strerror or exc}") from exc
        return documents_sha256(self.documents or ())


def walk_files(root: Path) -> Iterator[Path]:
    """Yield supported files under ``root`` in a stable order, skipping hidden entries."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and is_supported(path):
                yield path


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def documents_sha256(documents: Sequence[Document]) -> str:
    """Return the hex SHA-256 of documents' text and metadata."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.text.encode("utf-8"))
        digest.update(repr(sorted(document.metadata.items())).encode("utf-8"))
    return digest.hexdigest()
