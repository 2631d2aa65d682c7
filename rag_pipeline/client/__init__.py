"""Clients for an Open WebUI-compatible server: ``rag serve`` or Open WebUI itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_pipeline.client._client import AsyncRagClient, RagClient
    from rag_pipeline.client._push import PushReport, push
    from rag_pipeline.errors import RemoteError

__all__ = ["AsyncRagClient", "PushReport", "RagClient", "RemoteError", "push"]

_HOMES = {
    "AsyncRagClient": "rag_pipeline.client._client",
    "RagClient": "rag_pipeline.client._client",
    "RemoteError": "rag_pipeline.errors",
    "PushReport": "rag_pipeline.client._push",
    "push": "rag_pipeline.client._push",
}


def __getattr__(name: str) -> Any:
    # Imported on first use so that `rag --help` stays fast.
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
