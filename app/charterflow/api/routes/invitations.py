"""Invitations: an owner invites an email to a workspace with a role; the invitee accepts once
signed in (by password or single sign-on) with an account of that email.

The link is single-use and expires; only its hash is stored. It is emailed when SMTP is
configured, otherwise shown once to the inviting owner to pass on.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from charterflow.api.deps import (
    AppSettings,
    CurrentUser,
    DbSession,
    PageParams,
    SessionUser,
    enforce_rate_limit,
    is_id,
    not_found,
    paginate,
    require_role,
)
from charterflow.api.errors import errors
from charterflow.api.routes.auth import app_link
from charterflow.models import Invitation, Membership, Role, User, Workspace, utcnow
from charterflow.schemas.common import Page
from charterflow.schemas.workspaces import (
    InvitationAcceptedOut,
    InvitationAcceptIn,
    InvitationCreated,
    InvitationIn,
    InvitationOut,
)
from charterflow.security import new_secret_token, token_hash
from charterflow.services import audit, mail
from charterflow.services.workspaces import inviter_still_owner

router = APIRouter(tags=["invitations"])


def _pending(workspace_id: str) -> object:
    return (
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.accepted_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.created_at, Invitation.id)
    )


@router.get(
    "/workspaces/{workspace_id}/invitations",
    response_model=Page[InvitationOut],
    responses=errors(401, 403, 404),
    summary="Pending invitations of a workspace (owners)",
)
def list_invitations(
    workspace_id: str, db: DbSession, user: CurrentUser, page: PageParams
) -> object:
    require_role(db, workspace_id, user, Role.owner)
    return paginate(db, _pending(workspace_id), page, InvitationOut.model_validate)  # type: ignore[arg-type]


@router.post(
    "/workspaces/{workspace_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
    responses=errors(401, 403, 404, 409),
    summary="Invite an email to the workspace with a role (owners, signed in: not with an "
    "API key); emails a single-use link",
)
def create_invitation(
    workspace_id: str,
    body: InvitationIn,
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    settings: AppSettings,
    user: SessionUser,
) -> object:
    """A session only, not an API key: a leaked key must not let anyone into a workspace."""
    require_role(db, workspace_id, user, Role.owner)
    enforce_rate_limit(
        request, f"invite:user:{user.id}", settings.register_rate_limit_per_minute * 6
    )
    member = db.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id, User.email == body.email)
    )
    if member is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "This person is already a member")
    token = new_secret_token()
    invitation = Invitation(
        workspace_id=workspace_id,
        email=body.email,
        role=body.role.value,
        token_hash=token_hash(token),
        invited_by=user.id,
        expires_at=utcnow() + timedelta(seconds=settings.invitation_ttl_seconds),
    )
    db.add(invitation)
    db.flush()
    audit.record(
        db,
        request,
        "invitation.create",
        target_type="invitation",
        target_id=invitation.id,
        workspace_id=workspace_id,
        actor_id=user.id,
        email=body.email,
        role=body.role.value,
    )
    db.commit()
    link = app_link(settings, "invitations/accept", token)
    out = InvitationOut.model_validate(invitation).model_dump()
    if not settings.smtp_enabled:
        return {**out, "emailed": False, "invite_url": link}
    workspace = db.get(Workspace, workspace_id)
    days = max(1, settings.invitation_ttl_seconds // 86400)
    text = (
        f"{user.name} ({user.email}) invited you to the CharterFlow workspace "
        f'"{workspace.name if workspace else ""}" as {body.role.value}.\n\n'
        f"Accept within {days} day(s), signed in as {body.email} "
        f"(register or sign in first if needed):\n{link}\n"
    )
    background.add_task(mail.send, settings, body.email, "You are invited to CharterFlow", text)
    return {**out, "emailed": True, "invite_url": None}


@router.delete(
    "/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404),
    summary="Revoke a pending invitation (owners of its workspace; a session, not a key)",
)
def revoke_invitation(
    invitation_id: str, request: Request, db: DbSession, user: SessionUser
) -> Response:
    invitation = db.get(Invitation, invitation_id) if is_id(invitation_id) else None
    if invitation is None or invitation.accepted_at is not None:
        raise not_found("Invitation")
    try:
        require_role(db, invitation.workspace_id, user, Role.owner)
    except HTTPException as exc:
        raise not_found("Invitation") if exc.status_code == 404 else exc from None
    audit.record(
        db,
        request,
        "invitation.revoke",
        target_type="invitation",
        target_id=invitation.id,
        workspace_id=invitation.workspace_id,
        actor_id=user.id,
    )
    db.delete(invitation)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/accept",
    response_model=InvitationAcceptedOut,
    responses=errors(401, 403, 404, 409),
    summary="Accept an invitation (its token in the body) as the signed-in user it was sent to",
)
def accept_invitation(
    body: InvitationAcceptIn,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user: SessionUser,
) -> object:
    """Unknown, used, revoked and expired links are all 404. The link is for its email: an
    account of another email gets 403 (a forwarded link does not let someone else in). The
    token travels in the body, never in a path that access logs and redirects record."""
    return _accept(body.token, request, db, settings, user)


@router.post(
    "/invitations/{token}/accept",
    response_model=InvitationAcceptedOut,
    responses=errors(401, 403, 404, 409),
    summary="Accept an invitation, its token in the path (DESIGN §4b; prefer /invitations/accept)",
    deprecated=True,
)
# With a trailing slash too: otherwise Starlette answers it with a redirect whose Location
# repeats the token (to clients, proxies and their logs).
@router.post("/invitations/{token}/accept/", include_in_schema=False)
def accept_invitation_by_path(
    token: str, request: Request, db: DbSession, settings: AppSettings, user: SessionUser
) -> object:
    """The contract's original form, kept for existing clients. Access logs redact every
    ``/invitations/`` path (``observability``), so the token is not recorded there either."""
    return _accept(token, request, db, settings, user)


def _accept(
    token: str, request: Request, db: DbSession, settings: AppSettings, user: SessionUser
) -> object:
    enforce_rate_limit(
        request, f"invite-accept:user:{user.id}", settings.login_rate_limit_per_minute
    )
    invitation = (
        db.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
        if len(token) <= 200
        else None
    )
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.expires_at <= utcnow()
        or not inviter_still_owner(db, invitation)  # removed, demoted or deactivated since
    ):
        raise not_found("Invitation")
    if invitation.email != user.email.lower():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "This invitation is for another email address"
        )
    existing = db.scalar(
        select(Membership).where(
            Membership.workspace_id == invitation.workspace_id, Membership.user_id == user.id
        )
    )
    if existing is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "You are already a member")
    db.add(Membership(workspace_id=invitation.workspace_id, user_id=user.id, role=invitation.role))
    invitation.accepted_at = utcnow()
    invitation.accepted_by = user.id
    audit.record(
        db,
        request,
        "invitation.accept",
        target_type="invitation",
        target_id=invitation.id,
        workspace_id=invitation.workspace_id,
        actor_id=user.id,
        role=invitation.role,
    )
    try:
        db.commit()
    except IntegrityError:  # accepted twice at once
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "You are already a member") from None
    return {"workspace_id": invitation.workspace_id, "role": invitation.role}
