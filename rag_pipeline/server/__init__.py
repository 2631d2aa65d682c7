"""The Open WebUI-compatible server: files, knowledge, RAG chat and the Ollama proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_pipeline.server.app import create_app
    from rag_pipeline.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use so that `rag --help` does not load FastAPI and SQLAlchemy.
    if name == "create_app":
        from rag_pipeline.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from rag_pipeline.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
