"""Chunks: passages of ingested documents with embeddings and full-text search.

PostgreSQL: ``embedding vector(384)`` with an HNSW cosine index, and ``tsv`` generated as
``to_tsvector('english', text)`` with a GIN index. SQLite (development): the embedding is
float32 bytes, ``tsv`` an always-NULL virtual column, and the two indexes are empty partial
stand-ins with the same names (search runs in Python there), so one model fits both.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
Phase: expand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=32)
DIM = 384  # charterflow.models.chunk.EMBEDDING_DIM, fixed here as it was when written


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
        embedding: sa.types.TypeEngine = Vector(DIM)
        tsv = sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english', text)", persisted=True),
        )
    else:
        embedding = sa.LargeBinary()
        tsv = sa.Column("tsv", sa.Text(), sa.Computed("NULL", persisted=False))
    op.create_table(
        "chunks",
        sa.Column("id", ID, nullable=False),
        sa.Column("document_id", ID, nullable=False),
        sa.Column("notebook_id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("embedding", embedding, nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        tsv,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_chunks_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chunks")),
    )
    op.create_index("uq_chunks_document_ordinal", "chunks", ["document_id", "ordinal"], unique=True)
    op.create_index("ix_chunks_notebook_model", "chunks", ["notebook_id", "embedding_model"])
    if pg:
        op.create_index(
            "ix_chunks_embedding_hnsw",
            "chunks",
            ["embedding"],
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        )
        op.create_index("ix_chunks_tsv", "chunks", ["tsv"], postgresql_using="gin")
    else:
        # Same names, no content: SQLite has neither index type, and search runs in Python.
        op.create_index(
            "ix_chunks_embedding_hnsw", "chunks", ["embedding"], sqlite_where=sa.false()
        )
        op.create_index("ix_chunks_tsv", "chunks", ["tsv"], sqlite_where=sa.false())


def downgrade() -> None:
    op.drop_table("chunks")
