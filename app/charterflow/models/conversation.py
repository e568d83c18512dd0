"""Conversations: threads of questions asked in a notebook, each turn stored with its answer.

A turn keeps what was asked, the query actually used for retrieval (a follow-up is rewritten
from the earlier turns), the answer, its mode and citations, and how long it took. ``status``
says whether the answer is complete: a stream cut by the client or by the model is stored as
``interrupted`` or ``failed`` with the reason in ``warning``, never presented as complete.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, CreatedMixin, IdMixin, TimestampMixin


class TurnStatus(enum.StrEnum):
    complete = "complete"
    interrupted = "interrupted"
    failed = "failed"


class Conversation(IdMixin, TimestampMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_notebook_created", "notebook_id", "created_at"),)

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    notebook_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("notebooks.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String, nullable=False)
    created_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )

    @property
    def quoted(self) -> bool:
        """Verbatim extracts of the sources (as ``Answer.quoted``)."""
        return self.mode == "extractive" and bool(self.citations)


class Message(IdMixin, CreatedMixin, Base):
    """One turn: a question and its answer."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        CheckConstraint("status IN ('complete', 'interrupted', 'failed')", name="status"),
        CheckConstraint("mode IN ('extractive', 'llm')", name="mode"),
        Index("ix_conversation_messages_conversation_created", "conversation_id", "created_at"),
    )

    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    question: Mapped[str] = mapped_column(Text, nullable=False)
    retrieval_query: Mapped[str] = mapped_column(Text, nullable=False)
    answer: Mapped[str] = mapped_column(Text, nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The model that wrote the answer (``mode == "llm"``), as ``LLM_MODEL`` named it then.
    model: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(16), default=TurnStatus.complete.value, nullable=False
    )
    warning: Mapped[str | None] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict, nullable=False)
    created_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )

    @property
    def quoted(self) -> bool:
        """Verbatim extracts of the sources (as ``Answer.quoted``)."""
        return self.mode == "extractive" and bool(self.citations)
