"""Databases as versions before migrations made them: their schema, frozen as SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import create_engine, text

# rag-pipeline before the claims table and knowledge_files.path (what its create_all made,
# the same SQL for SQLite and PostgreSQL).
OLDEST = [
    """CREATE TABLE users (
        id VARCHAR(36) NOT NULL, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
        role VARCHAR(16) NOT NULL, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (id))""",
    "CREATE UNIQUE INDEX ix_users_email ON users (email)",
    """CREATE TABLE api_keys (
        key_hash VARCHAR(64) NOT NULL, user_id VARCHAR(36) NOT NULL, prefix VARCHAR(16) NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (key_hash),
        FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE)""",
    "CREATE INDEX ix_api_keys_user_id ON api_keys (user_id)",
    """CREATE TABLE files (
        id VARCHAR(36) NOT NULL, user_id VARCHAR(36) NOT NULL, filename VARCHAR(512) NOT NULL,
        path TEXT NOT NULL, content_type VARCHAR(255) NOT NULL, size INTEGER NOT NULL,
        file_hash VARCHAR(64) NOT NULL, content_hash VARCHAR(64), content TEXT,
        status VARCHAR(16) NOT NULL, error TEXT, chunks INTEGER NOT NULL,
        queued_at FLOAT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE)""",
    "CREATE INDEX ix_files_file_hash ON files (file_hash)",
    "CREATE INDEX ix_files_queued_at ON files (queued_at)",
    "CREATE INDEX ix_files_status ON files (status)",
    "CREATE INDEX ix_files_user_id ON files (user_id)",
    """CREATE TABLE knowledge (
        id VARCHAR(36) NOT NULL, user_id VARCHAR(36) NOT NULL, name VARCHAR(255) NOT NULL,
        description TEXT NOT NULL, meta JSON, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, PRIMARY KEY (id),
        FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE)""",
    "CREATE INDEX ix_knowledge_user_id ON knowledge (user_id)",
    """CREATE TABLE knowledge_files (
        knowledge_id VARCHAR(36) NOT NULL, file_id VARCHAR(36) NOT NULL,
        copied BOOLEAN NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (knowledge_id, file_id),
        FOREIGN KEY(knowledge_id) REFERENCES knowledge (id) ON DELETE CASCADE,
        FOREIGN KEY(file_id) REFERENCES files (id) ON DELETE CASCADE)""",
    "CREATE INDEX ix_knowledge_files_file_id ON knowledge_files (file_id)",
]

# The version just before migrations: claims and knowledge_files.path added at start-up.
LAST_BEFORE_MIGRATIONS = [
    *OLDEST,
    """CREATE TABLE claims (
        name VARCHAR(64) NOT NULL, user_id VARCHAR(36), created_at INTEGER NOT NULL,
        PRIMARY KEY (name))""",
    "ALTER TABLE knowledge_files ADD COLUMN path VARCHAR(1024) NOT NULL DEFAULT ''",
]


def create_old_database(url: str, statements: Sequence[str], rows: Sequence[str] = ()) -> None:
    """Create an old schema at ``url`` and insert ``rows`` (SQL statements) into it."""
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in [*statements, *rows]:
            connection.execute(text(statement))
    engine.dispose()
