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


class StatusError(RagError):
    """An exchange with another HTTP server failed; ``status``: its answer's, or ours."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class EmbeddingError(StatusError):
    """An embedding model or endpoint failed (``status``: what the endpoint answered)."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        super().__init__(message, status=status)


class RerankError(StatusError):
    """A reranking model or endpoint failed (``status``: what the endpoint answered)."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        super().__init__(message, status=status)


class ModelMismatchError(RagError):
    """A collection was built with another embedding model or dimension."""


class StoreError(RagError):
    """The vector store refused or failed an operation."""


class AuthError(RagError):
    """A server refused the credentials."""


class CredentialsError(AuthError):
    """A sign-in or sign-up form was refused (a wrong password, a taken e-mail)."""


class UnsupportedTypeError(RagError):
    """Neither a file's name nor its Content-Type names a format the loaders read."""


class TooLargeError(RagError):
    """An upload or request exceeds a configured size limit."""


class NotFoundError(RagError):
    """A file, knowledge base or collection does not exist (or is not the caller's to see)."""


class UpstreamError(StatusError):
    """An upstream model server could not be reached or refused a request (``status``: the
    one to answer with, 502 or 504)."""

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message, status=status)


class ModelNotFoundError(RagError):
    """No upstream serves the requested model."""


class RemoteError(StatusError):
    """A server this client called answered an error or could not be reached."""


class PermissionDeniedError(RagError):
    """The caller is known but may not do this."""
