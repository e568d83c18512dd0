"""Creating a workspace (one rule for registration's personal workspace and for new ones), and
the lock that serialises rules counted over a whole workspace."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from charterflow.models import Invitation, Membership, Role, User, Workspace, utcnow
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


def lock_workspace(db: Session, workspace_id: str) -> None:
    """Hold the workspace's write lock until this transaction ends.

    Rules counted over a workspace (at least one owner, storage quotas) must not pass twice
    for two requests at the same instant. A write to the workspace row takes the lock on
    both databases: PostgreSQL holds the row lock until commit, SQLite its single write
    lock; a second request then counts only once the first has committed."""
    db.execute(update(Workspace).where(Workspace.id == workspace_id).values(updated_at=utcnow()))


def void_invitations(db: Session, inviter_id: str, workspace_id: str | None = None) -> int:
    """Delete the pending invitations ``inviter_id`` made (in ``workspace_id``, or anywhere):
    an invitation carries its inviter's authority, which ends when they are removed, no
    longer an owner, or deactivated. The caller commits. Accepting also checks the inviter
    (``inviter_still_owner``), so one made in the same instant cannot slip through."""
    stmt = delete(Invitation).where(
        Invitation.invited_by == inviter_id, Invitation.accepted_at.is_(None)
    )
    if workspace_id is not None:
        stmt = stmt.where(Invitation.workspace_id == workspace_id)
    return db.execute(stmt).rowcount or 0


def inviter_still_owner(db: Session, invitation: Invitation) -> bool:
    """The invitation's author is an active owner of its workspace (else it is void)."""
    if invitation.invited_by is None:
        return False
    inviter = db.get(User, invitation.invited_by)
    if inviter is None or not inviter.is_active:
        return False
    role = db.scalar(
        select(Membership.role).where(
            Membership.workspace_id == invitation.workspace_id,
            Membership.user_id == inviter.id,
        )
    )
    return role == Role.owner.value
