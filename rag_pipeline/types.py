"""The data that flows between the pipeline stages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# How a search reads a collection: its dense vectors, its sparse (BM25) ones, or both fused.
SearchMode = Literal["dense", "sparse", "hybrid"]


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Term ids and weights of a sparse (BM25-style) vector."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class Document:
    """Text extracted from one file (or one page of it) with its metadata.

    ``metadata`` always has ``source`` (path as given), ``title`` and ``content_type``;
    PDFs add ``page`` (1-based). ``markdown`` is true when the text carries markdown
    headings that the chunker should follow.
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document sized for the embedding model."""

    id: str
    text: str
    source: str
    index: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk returned by retrieval, with its score."""

    id: str
    score: float
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # Cosine similarity of query and chunk, when known: ``score`` is on the search mode's
    # own scale (fused scores say nothing absolute), this one is comparable across queries.
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape used by ``rag query --json``."""
        return {
            "id": self.id,
            "score": self.score,
            "text": self.text,
            "source": self.source,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class SearchScope:
    """A collection to search, narrowed to the points whose payload matches ``where``."""

    collection: str
    where: Mapping[str, str | Sequence[str]] | None = None


@dataclass(frozen=True, slots=True)
class ChatPayload:
    """An OpenAI chat-completions request enriched with retrieved context."""

    model: str
    messages: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    # The hits placed in the context, in order (``sources`` numbers them for the model).
    chosen: tuple[Hit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the request body, ``sources`` included."""
        return {"model": self.model, "messages": self.messages, "sources": self.sources}
