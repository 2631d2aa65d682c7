"""Baseline: the tables of rag-pipeline 0.1, created; or completed on a database made before
migrations (which had no ``alembic_version``).

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)


def _claims() -> None:
    op.create_table(
        "claims",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])


def _files() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Integer(), nullable=False),
    )
    for column in ("file_hash", "queued_at", "status", "user_id"):
        op.create_index(f"ix_files_{column}", "files", [column])


def _knowledge() -> None:
    op.create_table(
        "knowledge",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_knowledge_user_id", "knowledge", ["user_id"])


def _knowledge_files() -> None:
    op.create_table(
        "knowledge_files",
        sa.Column(
            "knowledge_id",
            sa.String(36),
            sa.ForeignKey("knowledge.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "file_id",
            sa.String(36),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("copied", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False, server_default=""),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_knowledge_files_file_id", "knowledge_files", ["file_id"])


# In the order foreign keys need.
TABLES: dict[str, Callable[[], None]] = {
    "users": _users,
    "claims": _claims,
    "api_keys": _api_keys,
    "files": _files,
    "knowledge": _knowledge,
    "knowledge_files": _knowledge_files,
}


def upgrade() -> None:
    """Create the tables a database lacks, and what versions before 0.1 did not make."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()
    if "knowledge_files" in present:
        columns = {c["name"] for c in inspector.get_columns("knowledge_files")}
        if "path" not in columns:
            op.add_column(
                "knowledge_files",
                sa.Column("path", sa.String(1024), nullable=False, server_default=""),
            )
    _claim_first_user(bind)


def _claim_first_user(bind: sa.engine.Connection) -> None:
    # A database made before claims existed already has its first user (the admin): claim
    # the once-only "first_user" for them, or the next signup would become a second admin.
    users = sa.table("users", sa.column("id"), sa.column("created_at"))
    claims = sa.table("claims", sa.column("name"), sa.column("user_id"), sa.column("created_at"))
    if bind.scalar(sa.select(claims.c.name).where(claims.c.name == "first_user")) is not None:
        return
    first = bind.scalar(sa.select(users.c.id).order_by(users.c.created_at).limit(1))
    if first is not None:
        bind.execute(
            claims.insert().values(name="first_user", user_id=first, created_at=int(time.time()))
        )


def downgrade() -> None:
    """Drop every table (the baseline has nothing older to go back to)."""
    for name in reversed(TABLES):
        op.drop_table(name)
