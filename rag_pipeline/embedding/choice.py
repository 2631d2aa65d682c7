"""RAG_EMBEDDER=auto: each new collection gets the default model or the multilingual one."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.languages import MULTILINGUAL_SHARE, mix_label, script_mix, unread_share

log = logging.getLogger(__name__)


class EmbedderChoice:
    """Two embedders to choose from per collection, by the scripts of its first chunks.

    The default model fills a collection it can read (nearly all Latin script for
    MiniLM); any other gets the multilingual one. The choice is made once, when the
    collection is created, and kept: a collection is always queried with the model that
    filled it, which is found by the model name stored with it.
    """

    def __init__(
        self,
        default: Embedder,
        multilingual: Embedder,
        *,
        kinds: tuple[str, str] = ("local", "e5onnx"),
        min_share: float = MULTILINGUAL_SHARE,
    ) -> None:
        """``kinds``: the RAG_EMBEDDER values that build ``default`` and ``multilingual``."""
        self.default = default
        self.multilingual = multilingual
        self.kinds = kinds
        self.min_share = min_share

    @property
    def embedders(self) -> tuple[Embedder, Embedder]:
        """Both embedders, the default first."""
        return self.default, self.multilingual

    def for_model(self, model: str) -> Embedder | None:
        """Return the embedder whose model filled a collection stored as ``model``, if any."""
        for embedder in self.embedders:
            if embedder.model_name == model:
                return embedder
        return None

    def kind_of(self, embedder: Embedder) -> str:
        """Return the RAG_EMBEDDER value that builds ``embedder``."""
        return self.kinds[0] if embedder is self.default else self.kinds[1]

    def choose(self, script_counts: Mapping[str, int], *, collection: str = "") -> Embedder:
        """Return the embedder for a new collection whose first chunks have these scripts."""
        unread = unread_share(self.default.model_name, script_counts)
        chosen = self.multilingual if unread >= self.min_share else self.default
        log.info(
            "new collection %r (%s): %s",
            collection,
            mix_label(script_mix(script_counts)),
            chosen.model_name,
        )
        return chosen
