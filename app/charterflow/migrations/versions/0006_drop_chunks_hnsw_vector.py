"""Chunks: drop the first HNSW index, which 0005's halfvec index replaced.

Contract: run once no pod of the previous version searches any more (they order by
``embedding`` itself, which only the old index serves). ``DROP INDEX CONCURRENTLY`` waits for
running queries instead of blocking new ones.

Revision ID: 0006
Revises: 0012
Create Date: 2026-11-30
Phase: contract
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "ix_chunks_embedding_hnsw"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(OLD, table_name="chunks")
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        import sqlalchemy as sa

        op.create_index(OLD, "chunks", ["embedding"], sqlite_where=sa.false())
        return
    with op.get_context().autocommit_block():
        op.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OLD} ON chunks "
            "USING hnsw (embedding vector_cosine_ops)"
        )
