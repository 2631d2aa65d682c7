"""Indexes in the listings' order, so a page of files is read, not sorted out of all.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index files by (created_at, id), per user, and knowledge links by base and time."""
    op.create_index("ix_files_created", "files", ["created_at", "id"])
    op.create_index("ix_files_user_created", "files", ["user_id", "created_at", "id"])
    op.create_index("ix_knowledge_files_created", "knowledge_files", ["knowledge_id", "created_at"])


def downgrade() -> None:
    """Drop the three indexes."""
    op.drop_index("ix_knowledge_files_created", "knowledge_files")
    op.drop_index("ix_files_user_created", "files")
    op.drop_index("ix_files_created", "files")
