"""Write audit events in the same transaction as the change they describe."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from charterflow.models import AuditEvent


def client_ip(request: Request) -> str | None:
    """The client address as uvicorn resolved it (honouring trusted proxy headers)."""
    return request.client.host if request.client else None


def record(
    db: Session,
    request: Request,
    action: str,
    *,
    target_type: str,
    target_id: str | None = None,
    workspace_id: str | None = None,
    actor_id: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an event to ``db``; the caller's commit makes it durable along with the change."""
    event = AuditEvent(
        action=action,
        target_type=target_type,
        target_id=target_id,
        workspace_id=workspace_id,
        actor_id=actor_id,
        ip=client_ip(request),
        detail=detail,
    )
    db.add(event)
    return event
