"""Documents as structure (issue 24): the parser version of each document, its stage and
progress, each chunk's heading path, and the segmenter version of its sentence vectors.

All nullable, without defaults: adding them rewrites nothing. A document with no
``parser_version`` was parsed line by line (before issue 24): workers at start and
``charterflow reindex`` parse it again. Sentence vectors with no ``sentence_version`` were
split by the old segmenter: search ignores them (answers embed those sentences when asked)
and the backfill recomputes them, so a vector is never paired with the wrong sentence.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
Phase: expand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("parser_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stage", sa.String(16), nullable=True))
        batch.add_column(sa.Column("progress_done", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("progress_total", sa.Integer(), nullable=True))
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("heading", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sentence_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("sentence_version")
        batch.drop_column("heading")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("progress_total")
        batch.drop_column("progress_done")
        batch.drop_column("stage")
        batch.drop_column("parser_version")
