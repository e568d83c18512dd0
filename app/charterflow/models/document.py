"""Uploaded source documents; the stored bytes live in ``Storage`` under ``storage_key``."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, IdMixin, TimestampMixin, UTCDateTime


class DocumentStatus(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class DocumentStage(enum.StrEnum):
    """What ingestion is doing with the document now (``Document.stage``, the API's
    ``stage``); ``status`` stays the lifecycle the queue and the lease work on."""

    queued = "queued"
    reading = "reading"
    chunking = "chunking"
    embedding = "embedding"
    ready = "ready"
    failed = "failed"


class Document(IdMixin, TimestampMixin, Base):
    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'processing', 'ready', 'failed')", name="status"),
        Index("ix_documents_notebook_created", "notebook_id", "created_at"),
        Index("ix_documents_status_lease", "status", "lease_expires_at"),
    )

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    notebook_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("notebooks.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String, nullable=False)
    filename: Mapped[str] = mapped_column(String, nullable=False)
    media_type: Mapped[str] = mapped_column(String(127), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    storage_key: Mapped[str] = mapped_column(String(512), unique=True, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), default=DocumentStatus.pending.value, nullable=False
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    source_url: Mapped[str | None] = mapped_column(Text)  # a URL source's address
    #: ``ingest.parsers.PARSER_VERSION`` of the chunks stored (NULL: before migration 0010);
    #: documents under an older version are parsed again (``pipeline.reparse_stale``).
    parser_version: Mapped[int | None] = mapped_column(Integer)
    #: ``DocumentStage`` while and after ingesting (NULL: read from ``status``, ``stage_of``).
    stage: Mapped[str | None] = mapped_column(String(16))
    #: Pages read while reading a paged document, chunks embedded while embedding.
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )


def stage_of(document: Document) -> DocumentStage:
    """The document's stage: its own while processing, else its status's (a document
    settled, or stored before migration 0010, or put back in the queue)."""
    if document.status == DocumentStatus.ready.value:
        return DocumentStage.ready
    if document.status == DocumentStatus.failed.value:
        return DocumentStage.failed
    if document.status == DocumentStatus.pending.value:
        return DocumentStage.queued
    if document.stage in DocumentStage.__members__:
        return DocumentStage(document.stage)
    return DocumentStage.reading
