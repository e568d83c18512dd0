"""Audit trail: who did what to which object, from where, and when.

Rows carry no foreign keys on purpose: the trail outlives the users and workspaces it names.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from charterflow.db import Base
from charterflow.models.base import ID_LENGTH, CreatedMixin, IdMixin


class AuditEvent(IdMixin, CreatedMixin, Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_workspace_created", "workspace_id", "created_at"),)

    workspace_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    actor_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
