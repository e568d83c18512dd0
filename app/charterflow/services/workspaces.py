"""Creating a workspace: one rule for registration's personal workspace and for new ones."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from charterflow.models import Membership, Role, User, Workspace
from charterflow.services import audit


def create_owned_workspace(
    db: Session, request: Request, owner: User, name: str, *, personal: bool = False
) -> Workspace:
    """Add a workspace whose creator is its owner, with its audit event; the caller commits."""
    workspace = Workspace(name=name, personal=personal, created_by=owner.id)
    db.add(workspace)
    db.flush()
    db.add(Membership(workspace_id=workspace.id, user_id=owner.id, role=Role.owner.value))
    audit.record(
        db,
        request,
        "workspace.create",
        target_type="workspace",
        target_id=workspace.id,
        workspace_id=workspace.id,
        actor_id=owner.id,
        **({"personal": True} if personal else {}),
    )
    return workspace
