"""One Settings object, read from the environment (prefix RAG_) once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_pipeline.embedding.registry import EMBEDDER_NAMES, EMBEDDERS
from rag_pipeline.retrieval.rerank import RERANKER_NAMES

if TYPE_CHECKING:
    from rag_pipeline.loaders import LoadLimits
    from rag_pipeline.store.base import CollectionConfig


class Settings(BaseSettings):
    """Every knob of the pipeline, with embedded defaults that need no server."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    data_dir: Path = Field(Path(".rag"), description="where the embedded store and files live")
    qdrant_url: str | None = Field(None, description="a Qdrant server; unset = embedded")
    qdrant_api_key: str | None = None
    embedded_store: Literal["edge", "local"] = Field(
        "edge", description="embedded engine: qdrant-edge, or qdrant-client's local mode"
    )
    # How new collections are laid out (a server applies all; the embedded engine the
    # storage, quantization and HNSW ones). Unset: the engine's default.
    qdrant_shards: int | None = Field(None, ge=1, description="shard_number of new collections")
    qdrant_replication: int | None = Field(
        None, ge=1, description="replication_factor of new collections"
    )
    qdrant_write_consistency: int | None = Field(
        None, ge=1, description="write_consistency_factor of new collections"
    )
    qdrant_on_disk: bool = Field(False, description="vectors and payloads on disk (mmap)")
    qdrant_quantization: Literal["none", "int8"] = Field(
        "none", description="int8 scalar quantization (a RAM copy 4x smaller than float32)"
    )
    qdrant_hnsw_m: int | None = Field(None, ge=0, description="HNSW edges per node")
    qdrant_hnsw_ef_construct: int | None = Field(None, ge=4, description="HNSW build depth")
    # Exact search costs ~0.2 ms per 1,000 points a query (2 cores, 384 dims): 20k points
    # searched exactly add ~4 ms (benchmarks/scale_curve.py); building costs ~0.8 ms a point.
    hnsw_build_at: int = Field(
        20_000,
        ge=0,
        description="`rag index` builds the HNSW index when this many points are not in one "
        "(embedded store; 0: never)",
    )
    qdrant_layout: Literal["collections", "tenants"] = Field(
        "collections",
        description="a collection per knowledge base, or one per model with a tenant field",
    )

    embedder: Literal[EMBEDDER_NAMES] = Field(  # type: ignore[valid-type]  # the one list
        "auto",
        description="auto: per new collection, the local model for Latin-script text, "
        "e5onnx (multilingual) for the rest",
    )
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_base_url: str | None = Field(
        None, description="Ollama base (or a server's /ollama) or OpenAI-compatible .../v1"
    )
    embedding_api_key: str | None = None
    embedding_batch_size: int | None = Field(
        None, ge=1, description="texts per forward pass or request; unset: per embedder"
    )
    embedding_runtime: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="local models: auto (onnxruntime on a CPU, torch fp16 on a GPU), "
        "onnx (onnxruntime; on a GPU its CUDA provider, fp32: needs onnxruntime-gpu) or torch",
    )
    embedding_precision: Literal["fp32", "int8"] = Field(
        "fp32", description="ONNX on CPU: int8 is faster, a separate model identity"
    )
    embedding_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: an NVIDIA GPU when there is one (fp16), else the CPU"
    )
    embedding_threads: int | None = Field(
        None, ge=1, description="ONNX Runtime threads per model call; unset = one per core"
    )
    model_cache_dir: Path | None = Field(
        None, description="where exported ONNX models are cached; unset = <data_dir>/models"
    )
    embedding_concurrency: int = Field(4, ge=1)
    embedding_input_type: bool = Field(
        False, description="send input_type query/passage to an OpenAI-compatible endpoint"
    )
    query_prefix: str | None = None
    passage_prefix: str | None = None

    chunk_size: int = Field(256, ge=16, description="tokens (cl100k_base) per chunk")
    chunk_overlap: int = Field(32, ge=0)
    max_file_bytes: int = Field(100 * 1024 * 1024, ge=1)
    max_extracted_chars: int = Field(
        5_000_000, ge=1, description="characters of text one file may yield (~10,000 chunks)"
    )
    max_unzipped_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1,
        description="bytes a zip-based file (docx, pptx, xlsx, odt, epub) may expand to",
    )
    ocr: Literal["auto", "off", "force"] = Field(
        "auto",
        description="auto: OCR images and PDF pages without a real text layer; off; "
        "force: OCR every PDF page too",
    )
    ocr_languages: str | None = Field(
        None,
        description="Tesseract languages for every page, e.g. kor+eng; unset = chosen per page",
    )
    ocr_tessdata: Path | None = Field(
        None, description="Tesseract's tessdata folder; unset = TESSDATA_PREFIX or the usual places"
    )
    ocr_dpi: int = Field(200, ge=50, le=600, description="resolution PDF pages are OCR'd at")
    ocr_page_timeout: float = Field(120.0, gt=0, description="seconds OCR may spend on one page")
    max_pages: int = Field(2000, ge=1, description="pages one PDF or image file may have")
    max_image_pixels: int = Field(
        89_478_485, ge=1, description="pixels one page image may have (Pillow's bomb limit)"
    )
    workers: int | None = Field(
        None, ge=0, description="extraction worker processes; unset = one per core, 0 = none"
    )
    ray_address: str | None = Field(
        None,
        description="the Ray cluster `rag index --ray` runs on: auto, ray://HOST:10001 or "
        "HOST:PORT; unset = Ray's default (RAY_ADDRESS, else a new local cluster)",
    )

    top_k: int = Field(5, ge=1)
    relevance_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="minimum cosine similarity of a hit (dense and hybrid modes); unset = "
        "keep all (measured: a cut costs answerable queries more than it saves)",
    )
    search_mode: Literal["dense", "sparse", "hybrid"] = "hybrid"
    fusion: Literal["adaptive", "dbsf", "rrf"] = Field(
        "adaptive",
        description="how hybrid search fuses dense and sparse: adaptive leaves out a half "
        "that cannot read the query's script, then DBSF (benchmarks/RESULTS.md, issue 13)",
    )
    sparse_language: str = Field("en", description="stemmer and stop words for Latin script")
    reranker: Literal[RERANKER_NAMES] = Field(  # type: ignore[valid-type]  # the one list
        "none",
        description="a second stage over the first one's candidates: none; signals (our own "
        "dense and sparse signals on one scale); local (a cross-encoder run by ONNX Runtime); "
        "http (a reranking server)",
    )
    reranker_model: str | None = Field(
        None,
        description="local: the cross-encoder's folder or Hugging Face id (in the local "
        "cache); http: the model name sent, if the server wants one",
    )
    reranker_url: str | None = Field(
        None, description="http: the full endpoint, e.g. http://host:7997/rerank"
    )
    reranker_api_key: str | None = None
    reranker_api: Literal["cohere", "tei"] = Field(
        "cohere",
        description="http: the wire shape, Cohere/Jina (Infinity, vLLM, Jina, Open WebUI) "
        "or Hugging Face TEI",
    )
    reranker_precision: Literal["fp32", "int8"] = Field(
        "fp32", description="local: int8 is faster on a CPU"
    )
    reranker_timeout: float = Field(30.0, gt=0, description="http: seconds per request")
    rerank_candidates: int = Field(
        30,
        ge=1,
        description="first-stage hits per collection the reranker reorders (each costs a "
        "model pass: see the README's latency note)",
    )
    context_tokens: int = Field(3000, ge=100, description="token budget of the RAG context")

    @field_validator(
        "qdrant_url",
        "embedding_base_url",
        "qdrant_api_key",
        "embedding_api_key",
        "ray_address",
        "ocr_languages",
        "reranker_model",
        "reranker_url",
        "reranker_api_key",
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        if self.embedder in ("ollama", "openai") and not self.embedding_base_url:
            raise ValueError(f"embedder {self.embedder!r} needs RAG_EMBEDDING_BASE_URL")
        if self.reranker == "local" and not self.reranker_model:
            raise ValueError("reranker 'local' needs RAG_RERANKER_MODEL (a cross-encoder)")
        if self.reranker == "http" and not self.reranker_url:
            raise ValueError("reranker 'http' needs RAG_RERANKER_URL")
        return self

    def load_limits(self) -> LoadLimits:
        """The per-file limits loaders enforce, and how they OCR."""
        from rag_pipeline.loaders import LoadLimits, OcrConfig

        ocr = OcrConfig(
            mode=self.ocr,
            languages=self.ocr_languages,
            tessdata=str(self.ocr_tessdata) if self.ocr_tessdata else None,
            dpi=self.ocr_dpi,
            page_timeout=self.ocr_page_timeout,
            max_pages=self.max_pages,
            max_pixels=self.max_image_pixels,
        )
        return LoadLimits(
            self.max_file_bytes, self.max_extracted_chars, self.max_unzipped_bytes, ocr
        )

    def collection_config(self) -> CollectionConfig:
        """How the store lays out the collections it creates."""
        from rag_pipeline.store.base import CollectionConfig

        return CollectionConfig(
            shard_number=self.qdrant_shards,
            replication_factor=self.qdrant_replication,
            write_consistency_factor=self.qdrant_write_consistency,
            on_disk=self.qdrant_on_disk,
            quantization=self.qdrant_quantization,
            hnsw_m=self.qdrant_hnsw_m,
            hnsw_ef_construct=self.qdrant_hnsw_ef_construct,
        )

    @property
    def uses_cuda(self) -> bool:
        """Whether a local model runs on an NVIDIA GPU (asked of the driver, not of torch)."""
        if not EMBEDDERS[self.embedder].cuda or self.embedding_device == "cpu":
            return False
        if self.embedding_device == "cuda":
            return True
        return Path("/proc/driver/nvidia/version").exists()

    @property
    def effective_batch_size(self) -> int:
        """The embedding batch size in force: the setting, or the embedder's measured default."""
        if self.embedding_batch_size is not None:
            return self.embedding_batch_size
        if self.uses_cuda:
            # fp16 on one H200: 4,328 chunks/s at 256, 3,908 at 64, 3,905 at 1,024.
            return 256
        return EMBEDDERS[self.embedder].cpu_batch_size
