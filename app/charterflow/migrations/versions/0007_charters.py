"""Charters drafted from a notebook's sources, and every saved version of them.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30
Phase: expand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=32)


def _when(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "charters",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("notebook_id", ID, nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_charters_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notebook_id"],
            ["notebooks.id"],
            name=op.f("fk_charters_notebook_id_notebooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_charters_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charters")),
    )
    op.create_index("ix_charters_notebook_created", "charters", ["notebook_id", "created_at"])
    op.create_table(
        "charter_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("charter_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("change", sa.String(length=64), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["charter_id"],
            ["charters.id"],
            name=op.f("fk_charter_versions_charter_id_charters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_charter_versions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charter_versions")),
        sa.UniqueConstraint("charter_id", "number", name=op.f("uq_charter_versions_charter_id")),
    )


def downgrade() -> None:
    op.drop_table("charter_versions")
    op.drop_table("charters")
