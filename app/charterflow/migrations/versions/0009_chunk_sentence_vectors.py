"""Chunks: ``sentence_embeddings``, the vectors of each passage's sentences, computed at
ingestion so an extractive answer embeds only the question (bench/analysis.md, ``ask``).

Nullable and without a default: adding it rewrites nothing, and chunks stored before it (or
by a version that does not write it) keep NULL; answers then embed those sentences as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
Phase: expand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("sentence_embeddings", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("sentence_embeddings")
