"""Alembic migrations: a new database, databases older versions made, a newer one refused,
and replicas starting together; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from rag_pipeline.errors import ConfigError
from rag_pipeline.server import migrations
from rag_pipeline.server.db import Base, Claim, Database, FileRecord, KnowledgeFile, User

from .databases import database_url, fresh_postgres_url, postgres_url
from .old_schema import LAST_BEFORE_MIGRATIONS, OLDEST, create_old_database

__all__ = ["database_url", "fresh_postgres_url", "postgres_url"]

OLD_ROWS = [
    "INSERT INTO users (id, name, email, role, password_hash, created_at) VALUES "
    "('u-root', 'Root', 'root@example.com', 'admin', 'h', 1700000000), "
    "('u-bob', 'Bob', 'bob@example.com', 'user', 'h', 1700000100)",
    "INSERT INTO files (id, user_id, filename, path, content_type, size, file_hash, "
    "content_hash, content, status, error, chunks, queued_at, created_at, updated_at) VALUES "
    "('f-done', 'u-root', 'a.txt', '/x/a.txt', 'text/plain', 5, 'h1', 'c1', 'hello', "
    "'completed', NULL, 1, 1700000200.5, 1700000200, 1700000200), "
    "('f-cut', 'u-bob', 'b.txt', '/x/b.txt', 'text/plain', 5, 'h2', NULL, NULL, "
    "'processing', NULL, 0, 1700000300.25, 1700000300, 1700000300)",
    "INSERT INTO knowledge (id, user_id, name, description, meta, created_at, updated_at) "
    "VALUES ('k1', 'u-root', 'KB', 'old', NULL, 1700000400, 1700000400)",
    "INSERT INTO knowledge_files (knowledge_id, file_id, copied, created_at) "
    "VALUES ('k1', 'f-done', TRUE, 1700000500)",
]


def _schema_differences(database: Database) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_a_new_database_is_created_at_head_matching_the_models(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert migrations.current_revision(database.engine) == migrations.head_revision()
        assert _schema_differences(database) == []
    finally:
        database.close()
    # Opening it again changes nothing.
    Database(database_url).close()


@pytest.mark.parametrize("schema", ["oldest", "last_before_migrations"])
def test_a_database_made_before_migrations_is_upgraded_with_its_data(
    database_url: str, schema: str
) -> None:
    statements = OLDEST if schema == "oldest" else LAST_BEFORE_MIGRATIONS
    create_old_database(database_url, statements, OLD_ROWS)
    assert migrations.current_revision(create_engine(database_url)) is None

    database = Database(database_url)
    try:
        assert migrations.current_revision(database.engine) == migrations.head_revision()
        assert _schema_differences(database) == []
        with database.session() as session:
            users = {u.id: (u.email, u.role) for u in session.scalars(select(User))}
            files = {f.id: f for f in session.scalars(select(FileRecord))}
            link = session.get(KnowledgeFile, ("k1", "f-done"))
            first = session.get(Claim, "first_user")
        assert users == {
            "u-root": ("root@example.com", "admin"),
            "u-bob": ("bob@example.com", "user"),
        }
        done, cut = files["f-done"], files["f-cut"]
        assert (done.status, done.content, done.chunks, done.queued_at) == (
            "completed",
            "hello",
            1,
            1700000200.5,
        )
        # Left processing by the old server: no lease, no attempts yet.
        assert (cut.status, cut.lease_holder, cut.lease_expires, cut.attempts) == (
            "processing",
            None,
            None,
            0,
        )
        assert link is not None and link.state == "copied" and link.path == ""
        # The oldest schema had no claims: its first user is claimed as the admin.
        assert first is not None and first.user_id == "u-root"
    finally:
        database.close()


def test_a_database_a_newer_version_upgraded_is_refused(database_url: str) -> None:
    Database(database_url).close()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(ConfigError) as refused:
        Database(database_url)
    message = str(refused.value)
    assert "9999_future" in message and "Upgrade rag-pipeline" in message
    # Refused, not touched.
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "9999_future"
    engine.dispose()


def test_rag_serve_refuses_a_newer_database_with_the_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    Database(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path), "RAG_DATABASE_URL": url}
    rag = Path(sys.executable).with_name("rag")
    ran = subprocess.run(
        [str(rag), "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode != 0
    assert "9999_future" in ran.stderr and "Upgrade rag-pipeline" in ran.stderr


def test_replicas_starting_together_upgrade_once(database_url: str) -> None:
    create_old_database(database_url, OLDEST, OLD_ROWS)
    errors: list[BaseException] = []
    opened: list[Database] = []
    gate = threading.Barrier(4)

    def start() -> None:
        gate.wait()
        try:
            opened.append(Database(database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    try:
        with opened[0].engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            claims = connection.execute(text("SELECT name, user_id FROM claims")).all()
        assert versions == [(migrations.head_revision(),)]
        assert claims == [("first_user", "u-root")]
    finally:
        for database in opened:
            database.close()
