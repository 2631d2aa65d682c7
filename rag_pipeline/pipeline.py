"""The front door: a Pipeline built from Settings that indexes, queries and builds payloads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.choice import EmbedderChoice
from rag_pipeline.embedding.registry import embedder_kind, make_choice, make_embedder
from rag_pipeline.errors import ConfigError
from rag_pipeline.ingest.report import IndexReport, ProgressCallback
from rag_pipeline.languages import CJK, MULTILINGUAL_EMBEDDER, mix_label, model_scripts, script_mix
from rag_pipeline.settings import Settings
from rag_pipeline.store.base import (
    CollectionInfo,
    IndexBuild,
    VectorStore,
    validate_collection_name,
)
from rag_pipeline.store.factory import open_store
from rag_pipeline.types import ChatPayload, Document, Hit, SearchMode, SearchScope

if TYPE_CHECKING:
    from rag_pipeline.chunking.splitter import Chunker
    from rag_pipeline.embedding.sparse import SparseEncoder
    from rag_pipeline.ingest import Indexer, SourceItem
    from rag_pipeline.retrieval.prompt import PromptBuilder
    from rag_pipeline.retrieval.rerank import Reranker
    from rag_pipeline.retrieval.retriever import MixCache, Retriever


class Pipeline:
    """Index folders into knowledge collections and answer queries from them."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        chunker: Chunker | None = None,
        sparse_encoder: SparseEncoder | None = None,
        prompt_builder: PromptBuilder | None = None,
        retriever: Retriever | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        """Parts given here are used as they are; the others are built from ``settings``."""
        self.settings = settings or Settings()
        if retriever is not None:
            # A retriever brings its store and embedder: they must be the pipeline's too.
            for given, its, what in (
                (store, retriever.store, "store"),
                (embedder, retriever.embedder, "embedder"),
            ):
                if given is not None and given is not its:
                    raise ConfigError(f"the retriever was built over another {what}")
            store, embedder = retriever.store, retriever.embedder
            sparse_encoder = sparse_encoder or retriever.sparse_encoder
        self._chunker: Chunker | None = chunker
        self._prompt_builder: PromptBuilder | None = prompt_builder
        self._embedder = embedder
        # RAG_EMBEDDER=auto chooses per collection, unless an embedder was given.
        self._choice: EmbedderChoice | None = None
        self._chooses = embedder is None and self.settings.embedder == "auto"
        self._store = store
        self._sparse: SparseEncoder | None = sparse_encoder
        self._retriever = retriever
        self._reranker = reranker
        self._reranker_built = reranker is not None
        self._mixes: MixCache | None = None
        # The server touches these from request threads, its worker and a warm-up thread
        # at once; two racing first uses must not load two models or open a store twice.
        self._build_lock = threading.Lock()

    @property
    def chunker(self) -> Chunker:
        """The chunker, built on first use (a query never needs one)."""
        if self._chunker is None:
            from rag_pipeline.chunking.splitter import Chunker

            self._chunker = Chunker(self.settings.chunk_size, self.settings.chunk_overlap)
        return self._chunker

    @property
    def prompt_builder(self) -> PromptBuilder:
        """The prompt builder, built on first use."""
        if self._prompt_builder is None:
            from rag_pipeline.retrieval.prompt import PromptBuilder

            self._prompt_builder = PromptBuilder(context_tokens=self.settings.context_tokens)
        return self._prompt_builder

    @property
    def embedder(self) -> Embedder:
        """The embedder, built on first use."""
        if self._embedder is None:
            with self._build_lock:
                if self._embedder is None:
                    self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def choice(self) -> EmbedderChoice | None:
        """What RAG_EMBEDDER=auto chooses from per new collection (None: one embedder)."""
        if self._chooses and self._choice is None:
            embedder = self.embedder
            with self._build_lock:
                if self._choice is None:
                    self._choice = make_choice(self.settings, embedder)
        return self._choice

    def embedder_for(self, knowledge_id: str) -> Embedder:
        """Return the embedder a collection was filled with (auto: the one chosen for it)."""
        described = self.store.collection_model(knowledge_id)
        if described is not None and self.choice is not None:
            return self.choice.for_model(described[0]) or self.embedder
        return self.embedder

    @property
    def sparse_encoder(self) -> SparseEncoder:
        """The BM25-style encoder for the sparse half of hybrid search."""
        if self._sparse is None:
            with self._build_lock:
                if self._sparse is None:
                    from rag_pipeline.embedding.sparse import SparseEncoder

                    self._sparse = SparseEncoder(self.settings.sparse_language)
        return self._sparse

    @property
    def reranker(self) -> Reranker | None:
        """The second stage RAG_RERANKER names (None: none), built on first use."""
        if not self._reranker_built:
            reranker = self.make_reranker(self.settings.reranker)
            with self._build_lock:
                if not self._reranker_built:
                    self._reranker, self._reranker_built = reranker, True
        return self._reranker

    def make_reranker(self, kind: str) -> Reranker | None:
        """A new reranker of ``kind`` (a RAG_RERANKER value) over this pipeline's models."""
        from rag_pipeline.retrieval.rerank import make_reranker

        if kind != "signals":
            return make_reranker(self.settings, kind)
        from rag_pipeline.embedding.cache import CachedEmbedder

        # Candidates come back across queries (a knowledge base's best chunks for one
        # topic): each is embedded once, then answered from memory.
        choice = self.choice
        return make_reranker(
            self.settings,
            kind,
            embedder=CachedEmbedder(self.embedder),
            multilingual=CachedEmbedder(choice.multilingual) if choice else None,
            sparse=self.sparse_encoder,
        )

    @property
    def store(self) -> VectorStore:
        """The vector store, opened on first use."""
        if self._store is None:
            with self._build_lock:
                if self._store is None:
                    self._store = open_store(self.settings)
        return self._store

    def warm_up(self) -> None:
        """Load an in-process embedding model now, so the first request does not wait."""
        if embedder_kind(self.settings.embedder).in_process:
            self.embedder.embed_query("warm-up")

    def index(
        self,
        source: str | os.PathLike[str] | Iterable[SourceItem | tuple[str, Sequence[Document]]],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        on_total: Callable[[int], None] | None = None,
        prune: bool | None = None,
        root: str = "documents",
        extra_payload: dict[str, Any] | None = None,
        indexer: type[Indexer] | None = None,
        workers: int | None = None,
        checksum: bool = False,
    ) -> IndexReport:
        """Index into a knowledge collection, re-embedding only what changed.

        ``source`` is a folder or file (``prune``, default on: files no longer there are
        removed; ``on_total`` hears how many files were found), or source items:
        ``SourceItem``s or ``(source, documents)`` pairs of text already extracted
        (``prune``, default off, removes the items of ``root`` not given). ``indexer``
        picks the run (``RayIndexer``: on a Ray cluster), ``workers`` its processes.
        A file whose size, times and inode are as the last run stored them is not read
        again (``checksum``: hash every file all the same).
        """
        validate_collection_name(knowledge_id)
        run = self.indexer(workers=workers, kind=indexer, checksum=checksum)
        if isinstance(source, str | os.PathLike):
            return run.index(
                source,
                knowledge_id,
                progress=progress,
                on_total=on_total,
                prune=True if prune is None else prune,
                extra_payload=extra_payload,
            )
        from rag_pipeline.ingest import SourceItem

        items = (
            item if isinstance(item, SourceItem) else SourceItem.from_documents(*item)
            for item in source
        )
        return run.run(
            items,
            knowledge_id,
            root_key=root,
            prune=bool(prune),
            progress=progress,
            extra_payload=extra_payload,
        )

    def indexer(
        self,
        *,
        workers: int | None = None,
        kind: type[Indexer] | None = None,
        checksum: bool = False,
    ) -> Indexer:
        """An indexer of class ``kind`` (default ``Indexer``) over this pipeline's parts."""
        from rag_pipeline.ingest import Indexer

        return (kind or Indexer).for_pipeline(self, workers=workers, checksum=checksum)

    def retriever(self, mode: SearchMode | None = None) -> Retriever:
        """Return a retriever over this pipeline's store and embedder (the one given, if any,
        for its own mode)."""
        from rag_pipeline.retrieval.retriever import MixCache, Retriever

        if self._mixes is None:
            self._mixes = MixCache()
        given = self._retriever
        if given is not None:
            if mode is None or mode == given.mode:
                return given
            return Retriever(
                given.store,
                given.choice or given.embedder,
                sparse_encoder=given.sparse_encoder,
                mode=mode,
                fusion=given.fusion,
                candidates=given.candidates,
                min_similarity=given.min_similarity,
                reranker=given.reranker,
                rerank_candidates=given.rerank_candidates,
                mixes=given.mixes,
            )
        return Retriever(
            self.store,
            self.choice or self.embedder,
            sparse_encoder=self.sparse_encoder,
            mode=mode or self.settings.search_mode,
            fusion=self.settings.fusion,
            min_similarity=self.settings.relevance_threshold,
            reranker=self.reranker,
            rerank_candidates=self.settings.rerank_candidates,
            mixes=self._mixes,
        )

    def query(
        self,
        text: str,
        knowledge_ids: str | Sequence[str | SearchScope],
        *,
        top_k: int | None = None,
        mode: SearchMode | None = None,
    ) -> list[Hit]:
        """Return the chunks that best answer ``text`` (in collections, or scopes of them)."""
        if not text.strip():
            raise ConfigError("the query is empty")
        ids = [knowledge_ids] if isinstance(knowledge_ids, str) else list(knowledge_ids)
        return self.retriever(mode).search(text, ids, top_k=top_k or self.settings.top_k)

    def payload(
        self,
        text: str,
        knowledge_ids: str | Sequence[str | SearchScope],
        *,
        model: str,
        messages: Sequence[dict[str, Any]] | None = None,
        top_k: int | None = None,
        mode: SearchMode | None = None,
    ) -> ChatPayload:
        """Return the chat-completions request for ``text`` enriched with retrieved context."""
        hits = self.query(text, knowledge_ids, top_k=top_k, mode=mode)
        chat = [*(messages or []), {"role": "user", "content": text}]
        return self.prompt_builder.build(model, chat, hits)

    def collections(self) -> list[CollectionInfo]:
        """Return each knowledge collection's model, dimension and size, by name."""
        infos = (self.store.collection_info(name) for name in self.store.list_collections())
        # A collection deleted between listing and counting is simply left out.
        return [info for info in infos if info is not None]

    def language_mix(self, knowledge_id: str) -> dict[str, float]:
        """Return each script's share of a collection's chunks, largest first."""
        return script_mix(self.store.value_counts(knowledge_id, "script"))

    def build_index(
        self,
        knowledge_id: str,
        *,
        at: int | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> IndexBuild | None:
        """Build a collection's HNSW index once ``at`` (default ``settings.hnsw_build_at``;
        0: never) of its points are searched exactly; None when that is not due.
        ``on_start`` hears the number of points about to be indexed, before the build.

        Blocking, and on the embedded store the whole process waits (the engine holds the
        GIL): ~0.8 ms a point on 2 cores, 78 s for 100k, 18 min for 1M in one go. `rag
        index` calls it after a run; a server does not (a Qdrant server builds by itself).
        """
        threshold = self.settings.hnsw_build_at if at is None else at
        if threshold <= 0 or not self.store.has_collection(knowledge_id):
            return None
        before = self.store.unindexed(knowledge_id)
        if before < threshold:
            return None
        if on_start is not None:
            on_start(before)
        start = time.perf_counter()
        self.store.build_index(knowledge_id)
        seconds = time.perf_counter() - start
        return IndexBuild(knowledge_id, before, self.store.unindexed(knowledge_id), seconds)

    def language_advice(self, knowledge_id: str) -> str | None:
        """Say when most of a collection is CJK text its English-only model cannot read."""
        described = self.store.collection_model(knowledge_id)
        if described is None or model_scripts(described[0]) is None:
            return None
        mix = self.language_mix(knowledge_id)
        cjk = sum(share for script, share in mix.items() if script in CJK)
        if cjk <= 0.5:
            return None
        return (
            f"{cjk:.0%} of {knowledge_id!r} is Chinese, Japanese or Korean text ({mix_label(mix)}),"
            f" which {described[0]} does not read: hybrid search answers such questions from"
            f" its sparse half alone. `rag reindex -k {knowledge_id} --embedder"
            f" {MULTILINGUAL_EMBEDDER}` gives it a multilingual dense half, as RAG_EMBEDDER=auto"
            " (the default) does for new collections (benchmarks/RESULTS.md, issue 13)."
        )

    def delete(self, knowledge_id: str) -> bool:
        """Drop a knowledge collection."""
        return self.store.delete_collection(validate_collection_name(knowledge_id))

    def close(self) -> None:
        """Release the store and any HTTP connections."""
        if self._store is not None:
            self._store.close()
            self._store = None
        parts = self._choice.embedders if self._choice else (self._embedder,)
        for part in (*parts, self._reranker):
            closer = getattr(part, "close", None)
            if closer is not None:
                closer()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
