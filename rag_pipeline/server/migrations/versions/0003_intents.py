"""Crash-safe knowledge bookkeeping: a state on each knowledge link and knowledge base.

``knowledge_files.copied`` (a boolean) becomes ``state``: waiting, copying, copied or
removing, so an add or a remove the server died in the middle of is found and finished
at the next start; ``knowledge.state`` marks a reset or a delete under way.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the state columns; a copied link is COPIED, one not copied yet WAITING."""
    op.add_column(
        "knowledge", sa.Column("state", sa.String(16), nullable=False, server_default="ready")
    )
    op.add_column(
        "knowledge_files",
        sa.Column("state", sa.String(16), nullable=False, server_default="waiting"),
    )
    links = sa.table("knowledge_files", sa.column("copied", sa.Boolean), sa.column("state"))
    op.execute(links.update().where(links.c.copied.is_(True)).values(state="copied"))
    with op.batch_alter_table("knowledge_files") as batch:
        batch.drop_column("copied")


def downgrade() -> None:
    """Back to the boolean (a link under way counts as not copied)."""
    with op.batch_alter_table("knowledge_files") as batch:
        batch.add_column(
            sa.Column("copied", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    links = sa.table("knowledge_files", sa.column("copied", sa.Boolean), sa.column("state"))
    op.execute(links.update().where(links.c.state == "copied").values(copied=True))
    with op.batch_alter_table("knowledge_files") as batch:
        batch.drop_column("state")
    op.drop_column("knowledge", "state")
