"""Charters: structured documents drafted section by section from a notebook's sources.

``sections`` is the current text (each section's body, its citations and how it came to be);
every save also appends a ``CharterVersion`` holding the charter as saved, so an earlier
version can be seen and restored (restoring is itself a new version). A version stores a
section it shares with an earlier kept version as ``{"key", "same_as": n}`` (version ``n``
holds the body); ``services.charters.whole_sections`` reads it whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, CreatedMixin, IdMixin, TimestampMixin


class Charter(IdMixin, TimestampMixin, Base):
    __tablename__ = "charters"
    __table_args__ = (Index("ix_charters_notebook_created", "notebook_id", "created_at"),)

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    notebook_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("notebooks.id", ondelete="CASCADE"), nullable=False
    )
    template: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(String, nullable=False)
    sections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    #: The number of the latest version (the one ``sections`` holds).
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )


class CharterVersion(IdMixin, CreatedMixin, Base):
    """The charter as one save left it (sections shared with an earlier version by reference)."""

    __tablename__ = "charter_versions"
    __table_args__ = (UniqueConstraint("charter_id", "number"),)

    charter_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("charters.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String, nullable=False)
    sections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    #: What the save did: ``draft``, ``title``, ``edit:<key>``, ``regenerate:<key>``,
    #: ``restore:<n>``.
    change: Mapped[str] = mapped_column(String(64), nullable=False)
    created_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
