"""Conversation turns: ``model``, the model that wrote an answer (``mode == "llm"``), so a
turn shows which model wrote it after ``LLM_MODEL`` changes.

Nullable and without a default: adding it rewrites nothing; turns stored before it (and every
extractive turn) keep NULL. After 0010 (documents' structure), before the contract step 0006.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
Phase: expand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_messages") as batch:
        batch.add_column(sa.Column("model", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_messages") as batch:
        batch.drop_column("model")
