"""What an indexing run did, file by file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ProgressCallback = Callable[[str, str], None]


@dataclass
class IndexReport:
    """What an indexing run did, file by file."""

    knowledge_id: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
    # Stopped by Ctrl-C: what is listed was fully written, the rest was not touched.
    interrupted: bool = False
    # Chunks now stored per source written or skipped (a server records them per file).
    chunk_counts: dict[str, int] = field(default_factory=dict)
    # Pages read by OCR (a re-run that finds every file unchanged reads none).
    pages_ocr: int = 0

    @property
    def failed(self) -> list[str]:
        """Sources that could not be indexed."""
        return [e["path"] for e in self.errors]

    @property
    def ok(self) -> bool:
        """True when every file was indexed."""
        return not self.errors and not self.interrupted

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape printed by ``rag index --json``."""
        return {
            "knowledge_id": self.knowledge_id,
            "files": {
                "added": len(self.added),
                "updated": len(self.updated),
                "skipped": len(self.skipped),
                "deleted": len(self.deleted),
                "failed": len(self.errors),
            },
            "chunks": {"added": self.chunks_added, "deleted": self.chunks_deleted},
            "pages_ocr": self.pages_ocr,
            "errors": list(self.errors),
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
        }

    def sort(self) -> None:
        """Put every list in name order (stages finish sources out of order)."""
        for names in (self.added, self.updated, self.skipped, self.deleted):
            names.sort()
        self.errors.sort(key=lambda e: e["path"])
