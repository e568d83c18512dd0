"""Notebooks: the unit that holds sources (documents) inside a workspace."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, IdMixin, TimestampMixin


class Notebook(IdMixin, TimestampMixin, Base):
    __tablename__ = "notebooks"
    __table_args__ = (Index("ix_notebooks_workspace_created", "workspace_id", "created_at"),)

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
