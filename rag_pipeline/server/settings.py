"""The server's settings: the pipeline's, plus database, upstreams, auth and limits."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from rag_pipeline.settings import Settings


class ServerSettings(Settings):
    """Everything ``rag serve`` reads from the environment (prefix RAG_, and ENV)."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset = SQLite file under the data dir"
    )
    ollama_base_url: str | None = Field(
        None, description="an Ollama server, e.g. http://host:11434"
    )
    openai_api_base_url: str | None = Field(
        None, description="an OpenAI-compatible base URL ending in /v1"
    )
    openai_api_key: str | None = None
    env: str = Field(
        "prod", validation_alias=AliasChoices("ENV", "env"), description="'dev' serves /docs"
    )
    jwt_secret: str | None = Field(None, description="unset = generated once, kept in the data dir")
    jwt_expires_seconds: int = Field(30 * 24 * 3600, ge=60)
    enable_signup: bool = Field(False, description="allow signups after the first (admin) user")
    # Open WebUI's switch, under its own name too; off by default there and here.
    user_knowledge_access: bool = Field(
        False,
        validation_alias=AliasChoices(
            "RAG_USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS",
            "USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS",
            "user_knowledge_access",
        ),
        description="let users who are not admins create knowledge bases",
    )
    upstream_timeout: float = Field(300.0, gt=0, description="seconds to wait for an upstream")
    upstream_connect_timeout: float = Field(5.0, gt=0)
    embed_max_input_chars: int = Field(
        32_768,
        ge=1024,
        description="characters of one embedding-API input that are read; the rest is cut, "
        "as the model cuts its input at its window anyway (512 tokens at most here)",
    )
    embed_max_request_chars: int = Field(
        1_000_000,
        ge=1024,
        description="characters one embedding-API request may hold in all (400 past it): "
        "one request must not hold the shared model for minutes",
    )
    max_request_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="largest request body other than a file upload (413 past it; uploads "
        "are capped by max_file_bytes)",
    )
    # A sync manifest names every file of a knowledge base (~140 bytes each): 8 MiB
    # refused a sync of 60k files (benchmarks/scale_server.py).
    max_manifest_bytes: int = Field(
        128 * 1024 * 1024,
        ge=1024,
        description="largest body of a knowledge base's sync/diff and sync/cleanup (413 past "
        "it; ~140 bytes a file: 128 MiB is ~900k files)",
    )
    models_cache_seconds: float = Field(10.0, ge=0)
    embedding_cache_entries: int = Field(
        20_000,
        ge=0,
        description="vectors of texts the embedding API (/v1/embeddings, /ollama/api/embed) "
        "answered, kept to answer them again (Open WebUI embeds each file twice); ~1.6 KB "
        "each for a 384-dimension model; 0: off",
    )
    processing_workers: int = Field(
        4,
        ge=1,
        description="threads processing uploaded files at once; their chunks share model "
        "batches (1,000 SciFact docs: 8.6 docs/s with 4, 7.7 with 1)",
    )

    processing_batch: int = Field(
        16,
        ge=1,
        description="pending files a processing thread takes at once; their chunks are "
        "embedded together",
    )
    processing_lease_seconds: float = Field(
        60.0,
        ge=1.0,
        description="how long a replica holds a file it processes without renewing it (it "
        "renews every third of this); a dead replica's files are taken over after it",
    )
    processing_max_attempts: int = Field(
        3,
        ge=1,
        description="claims of one file whose lease ran out before it is failed, so a file "
        "that kills its server is not retried forever",
    )
    replica_id: str | None = Field(
        None,
        max_length=128,
        description="this server's name in file leases, unique among replicas; unset = "
        "host:pid:random. A stable one takes back its own files at once after a crash",
    )

    @field_validator(
        "database_url",
        "ollama_base_url",
        "openai_api_base_url",
        "openai_api_key",
        "jwt_secret",
        "replica_id",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value and value.startswith("http") else (value or None)

    @property
    def docs_enabled(self) -> bool:
        """Whether /docs and /openapi.json are served."""
        return self.env.lower() == "dev"

    @property
    def upload_dir(self) -> Path:
        """Where uploaded originals are kept."""
        return self.data_dir / "uploads"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'server.db').resolve()}"

    def resolved_jwt_secret(self) -> str:
        """The JWT secret: from settings, or generated once and kept under the data dir."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(secret, encoding="utf-8")
        return secret
