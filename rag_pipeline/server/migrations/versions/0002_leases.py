"""Leases on files being processed (holder, expiry, attempts) and each attempt's history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the lease columns to files and the file_attempts table."""
    # Rows an older server left processing get no lease: the claim treats a missing lease
    # as ending a lease after the upload, so they are taken up again at once.
    op.add_column("files", sa.Column("lease_holder", sa.String(128), nullable=True))
    op.add_column("files", sa.Column("lease_expires", sa.Float(), nullable=True))
    op.add_column("files", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "file_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "file_id",
            sa.String(36),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
    )
    op.create_index("ix_file_attempts_file_id", "file_attempts", ["file_id"])


def downgrade() -> None:
    """Drop the attempts table and the lease columns."""
    op.drop_index("ix_file_attempts_file_id", "file_attempts")
    op.drop_table("file_attempts")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("attempts")
        batch.drop_column("lease_expires")
        batch.drop_column("lease_holder")
