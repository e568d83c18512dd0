"""Passages of ingested documents, with their embeddings: what search and answers retrieve.

``start``/``end`` are character offsets into the document's extracted (normalised) text, so a
citation points at the exact span; ``page`` is the PDF page the passage starts on.

The embedding dimension is fixed (``EMBEDDING_DIM``): pgvector's HNSW index needs one
dimension per column, and every provider is checked against it. ``embedding_model`` records
which model produced a vector; search compares only vectors of the configured model, and
``charterflow reindex`` re-embeds the others.

PostgreSQL-only objects (the HNSW and full-text GIN indexes, the ``tsv`` generated column)
are declared here for PostgreSQL; on SQLite, migration 0002 creates same-named stand-ins
(an always-NULL virtual column, empty partial indexes) so one model describes both schemas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import Computed, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, CreatedMixin, IdMixin

EMBEDDING_DIM = 384
FTS_CONFIG = "english"


class EmbeddingType(TypeDecorator[np.ndarray]):
    """``vector(384)`` on PostgreSQL, float32 bytes on SQLite; numpy arrays in Python."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Vector(EMBEDDING_DIM))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        array = np.asarray(value, dtype=np.float32)
        if array.shape != (EMBEDDING_DIM,):
            raise ValueError(f"embedding must have {EMBEDDING_DIM} dimensions, not {array.shape}")
        return array if dialect.name == "postgresql" else array.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return np.frombuffer(bytes(value), dtype=np.float32)
        return np.asarray(value, dtype=np.float32)


class TSVectorType(TypeDecorator[str]):
    """``tsvector`` on PostgreSQL; on SQLite a stand-in column that is always NULL."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TSVECTOR())
        return dialect.type_descriptor(Text())


class Chunk(IdMixin, CreatedMixin, Base):
    __tablename__ = "chunks"
    __table_args__ = (
        Index("uq_chunks_document_ordinal", "document_id", "ordinal", unique=True),
        Index("ix_chunks_notebook_model", "notebook_id", "embedding_model"),
        # Over ``embedding::halfvec(384)`` (migration 0005); the model names only the column,
        # because autogenerate compares no expression index.
        Index("ix_chunks_embedding_hnsw_half", "embedding", postgresql_using="hnsw"),
        Index("ix_chunks_tsv", "tsv", postgresql_using="gin"),
    )

    document_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    notebook_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    workspace_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    ordinal: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    start: Mapped[int] = mapped_column(Integer, nullable=False)
    end: Mapped[int] = mapped_column(Integer, nullable=False)
    page: Mapped[int | None] = mapped_column(Integer)
    embedding: Mapped[np.ndarray] = mapped_column(EmbeddingType(), nullable=False)
    embedding_model: Mapped[str] = mapped_column(String(200), nullable=False)
    #: The vectors of ``text.sentences(text)``, one float16 row each, by ``embedding_model``
    #: (``embeddings.pack_sentences``); NULL for chunks stored before migration 0009 or with
    #: ``INGEST_SENTENCE_VECTORS`` off: answers then embed those sentences when asked.
    sentence_embeddings: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: ``retrieval.text.SEGMENTER_VERSION`` of the split that ``sentence_embeddings`` follows
    #: (NULL: the old one, before migration 0010): other versions' vectors are never used.
    sentence_version: Mapped[int | None] = mapped_column(Integer)
    #: The headings the passage sits under, outermost first, joined by
    #: ``ingest.blocks.HEADING_SEPARATOR`` (NULL: under no heading, or parsed before 0010).
    heading: Mapped[str | None] = mapped_column(Text)
    tsv: Mapped[str | None] = mapped_column(
        TSVectorType(), Computed(f"to_tsvector('{FTS_CONFIG}', text)", persisted=True)
    )
