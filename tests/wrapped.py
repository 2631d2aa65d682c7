"""A real embedder seen through a wrapper: tests subclass it to observe calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Wrapped:
    """Passes every call to ``inner`` (a real embedder); a test overrides what it watches."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)
