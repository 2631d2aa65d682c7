"""The exceptions rag-pipeline raises: one base, a shallow tree."""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error raised by rag-pipeline."""


class ConfigError(RagError):
    """A setting or argument is invalid."""


class LoaderError(RagError):
    """A file could not be turned into text."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class EmbeddingError(RagError):
    """An embedding model or endpoint failed."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class ModelMismatchError(RagError):
    """A collection was built with another embedding model or dimension."""


class StoreError(RagError):
    """The vector store refused or failed an operation."""


class AuthError(RagError):
    """A server refused the credentials."""


class TooLargeError(RagError):
    """An upload or request exceeds a configured size limit."""


class NotFoundError(RagError):
    """A file, knowledge base or collection does not exist (or is not the caller's to see)."""


class UpstreamError(RagError):
    """An upstream model server could not be reached or refused a request."""

    def __init__(self, message: str, *, status: int = 502) -> None:
        self.status = status
        super().__init__(message)


class ModelNotFoundError(RagError):
    """No upstream serves the requested model."""


class RemoteError(RagError):
    """A server this client called answered an error or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class PermissionDeniedError(RagError):
    """The caller is known but may not do this."""
