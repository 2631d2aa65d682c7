"""The server's metadata: users, API keys, files, knowledge and their links (SQLAlchemy 2)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# File processing states, in the order a file goes through them; DELETING marks a file
# whose deletion began (hidden everywhere; the next start finishes it after a crash).
PENDING, PROCESSING, COMPLETED, FAILED = "pending", "processing", "completed", "failed"
DELETING = "deleting"

# A file's place in a knowledge base (KnowledgeFile.state), see services/knowledge.py:
# WAITING for the file to complete, COPYING its vectors in, COPIED (all there), REMOVING
# (hidden; its vectors are going, then the row).
WAITING, COPYING, COPIED, REMOVING = "waiting", "copying", "copied", "removing"
# A knowledge base's state (Knowledge.state): READY, RESETTING (its links are gone, its
# collection is being dropped) or DELETING (hidden; collection, then row).
READY, RESETTING = "ready", "resetting"


# Bulk UPDATEs whose rows no session holds: nothing to synchronise in memory.
NO_UPDATE_SYNC = {"synchronize_session": False}


def now() -> int:
    """Seconds since the epoch, as Open WebUI stamps its objects."""
    return int(time.time())


class Base(DeclarativeBase):
    """Declarative base of every table."""


class User(Base):
    """A person (or script) who signs in; the first one is the admin."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16), default="user")
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class Claim(Base):
    """A once-only event of the server, held by the one row that inserted it first.

    Concurrent signups on a new server all try to insert ``first_user``; the primary key
    lets exactly one succeed in any database, so exactly one becomes the first admin
    (a count of users read first and written later let 15 of 20 racers in).
    """

    __tablename__ = "claims"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[int] = mapped_column(Integer, default=now)


FIRST_USER = "first_user"


class ApiKey(Base):
    """An ``sk-`` key, stored as its SHA-256 only; one per user, as in Open WebUI."""

    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class FileRecord(Base):
    """An uploaded file; ``status`` is the durable state of its processing job."""

    __tablename__ = "files"
    # The listing's order (newest first, then id), so a page is read from the index
    # instead of sorting every file: page 2 of 30k 90 -> 2 ms (benchmarks/knowledge_listing.py).
    __table_args__ = (
        Index("ix_files_created", "created_at", "id"),
        Index("ix_files_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    file_hash: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    # Upload order to the sub-second, so files are processed first come, first served.
    queued_at: Mapped[float] = mapped_column(Float, default=time.time, index=True)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    updated_at: Mapped[int] = mapped_column(Integer, default=now, onupdate=now)
    # While processing: which replica holds the file and until when (database clock, see
    # db_clock); the holder renews the lease, and another replica takes an expired one.
    lease_holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Claims so far; a file whose lease expired this often is failed, not claimed again.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FileAttempt(Base):
    """One claim of a file by a replica: when it began and how it ended."""

    __tablename__ = "file_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    replica: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # completed, failed, expired (taken over after its lease ran out: the replica died or
    # stalled; its late result is refused), released (its server stopped); None while open.
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Knowledge(Base):
    """A knowledge base; its vectors live in the collection named by its id."""

    __tablename__ = "knowledge"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    updated_at: Mapped[int] = mapped_column(Integer, default=now, onupdate=now)
    # READY, or the multi-step change under way (RESETTING, DELETING): an intent the next
    # start finishes if the server died in the middle of it.
    state: Mapped[str] = mapped_column(String(16), default=READY, server_default=READY)


class KnowledgeFile(Base):
    """A file in a knowledge base; ``state`` says where its vectors are (WAITING … REMOVING)."""

    __tablename__ = "knowledge_files"
    # A knowledge base's files in the listing's order (see FileRecord's).
    __table_args__ = (Index("ix_knowledge_files_created", "knowledge_id", "created_at"),)

    knowledge_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    state: Mapped[str] = mapped_column(String(16), default=WAITING, server_default=WAITING)
    # The folder the file sits in inside the knowledge base ("docs/api"; "" = top), as
    # knowledge sync manifests name it: a path, not a directory object.
    path: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class Database:
    """An engine and a session factory over the server's metadata tables."""

    def __init__(self, url: str) -> None:
        """Connect, and migrate the schema to this version's head (ConfigError if newer)."""
        from rag_pipeline.server import migrations

        options: dict[str, Any] = {}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **options)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            migrations.upgrade(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """The database's dialect name: sqlite, postgresql, …"""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()


class db_clock(FunctionElement[float]):
    """The database server's clock in seconds since the epoch, as SQL.

    Leases are stamped and compared with one clock, the database's, so replicas on hosts
    whose clocks differ still agree on when a lease ran out.
    """

    type = Float()
    inherit_cache = True


@compiles(db_clock, "postgresql")
def _db_clock_postgresql(_element: db_clock, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_clock)
def _db_clock_sqlite(_element: db_clock, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # The file holds password hashes and extracted text: owner-only, like the JWT secret
    # (and its -wal/-shm companions, which SQLite creates with the same mode).
    path = connection.execute("PRAGMA database_list").fetchone()[2]
    if path:
        os.chmod(path, 0o600)
    cursor = connection.cursor()
    # WAL lets the worker write while request threads read; foreign keys make CASCADE work.
    _switch_to_wal(cursor)
    # In WAL mode NORMAL is safe from corruption and skips an fsync per commit (FULL's);
    # a power cut may lose the last commits, which a restart re-queues or cleans up.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _is_locked(exc: BaseException) -> bool:
    import sqlite3

    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode once (the mode is kept in the file).

    The switch takes an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy wait, while another connection holds a lock: replicas starting
    together on a file not yet in WAL failed so in 6 of 40 tries of four. So: read the
    mode first (a file already in WAL needs no lock), and retry the switch (tenacity).
    """
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    for attempt in Retrying(
        retry=retry_if_exception(_is_locked),
        stop=stop_after_delay(30),
        wait=wait_exponential(multiplier=0.01, max=0.5),
        reraise=True,
    ):
        with attempt:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
