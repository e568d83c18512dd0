"""Workspaces, their members and their audit trail."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError

from charterflow.api.deps import (
    AppSettings,
    CurrentUser,
    DbSession,
    PageParams,
    SessionUser,
    is_id,
    not_found,
    paginate,
    require_role,
)
from charterflow.api.errors import AUTHED, errors
from charterflow.api.routes import invitations
from charterflow.models import AuditEvent, Membership, Role, Workspace
from charterflow.schemas.common import Page
from charterflow.schemas.workspaces import (
    AuditEventOut,
    InvitationCreated,
    InvitationIn,
    MemberIn,
    MemberOut,
    MemberUpdate,
    WorkspaceIn,
    WorkspaceOut,
)
from charterflow.services import audit
from charterflow.services.cleanup import delete_with_documents
from charterflow.services.workspaces import (
    create_owned_workspace,
    lock_workspace,
    void_invitations,
)

router = APIRouter(prefix="/workspaces", tags=["workspaces"])


def _out(workspace: Workspace, role: str) -> WorkspaceOut:
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        personal=workspace.personal,
        role=Role(role),
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
    )


def _member_out(m: Membership) -> MemberOut:
    return MemberOut(
        user_id=m.user_id,
        email=m.user.email,
        name=m.user.name,
        role=Role(m.role),
        created_at=m.created_at,
    )


@router.get("", response_model=Page[WorkspaceOut], responses=errors(401), summary="My workspaces")
def list_workspaces(db: DbSession, user: CurrentUser, page: PageParams) -> Page[WorkspaceOut]:
    mine = select(Workspace.id).join(Membership).where(Membership.user_id == user.id)
    total = db.scalar(select(func.count()).select_from(mine.subquery())) or 0
    rows = db.execute(
        select(Workspace, Membership.role)
        .join(Membership)
        .where(Membership.user_id == user.id)
        .order_by(Workspace.created_at, Workspace.id)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    items = [_out(ws, role) for ws, role in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkspaceOut,
    responses=errors(401),
    summary="Create a workspace (the caller becomes its owner)",
)
def create_workspace(
    body: WorkspaceIn, request: Request, db: DbSession, user: CurrentUser
) -> WorkspaceOut:
    workspace = create_owned_workspace(db, request, user, body.name)
    db.commit()
    return _out(workspace, Role.owner.value)


@router.get(
    "/{workspace_id}", response_model=WorkspaceOut, responses=errors(*AUTHED), summary="One"
)
def get_workspace(workspace_id: str, db: DbSession, user: CurrentUser) -> WorkspaceOut:
    membership = require_role(db, workspace_id, user, Role.viewer)
    workspace = db.get(Workspace, workspace_id)
    assert workspace is not None  # a membership implies its workspace (foreign key)
    return _out(workspace, membership.role)


@router.patch(
    "/{workspace_id}",
    response_model=WorkspaceOut,
    responses=errors(*AUTHED, 403),
    summary="Rename (owners)",
)
def update_workspace(
    workspace_id: str, body: WorkspaceIn, request: Request, db: DbSession, user: CurrentUser
) -> WorkspaceOut:
    membership = require_role(db, workspace_id, user, Role.owner)
    workspace = db.get(Workspace, workspace_id)
    assert workspace is not None
    workspace.name = body.name
    audit.record(
        db,
        request,
        "workspace.update",
        target_type="workspace",
        target_id=workspace.id,
        workspace_id=workspace.id,
        actor_id=user.id,
        name=body.name,
    )
    db.commit()
    return _out(workspace, membership.role)


@router.delete(
    "/{workspace_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403, 409),
    summary="Delete with all notebooks and documents (owners; not the personal workspace)",
)
def delete_workspace(
    workspace_id: str, request: Request, db: DbSession, user: CurrentUser
) -> Response:
    require_role(db, workspace_id, user, Role.owner)
    workspace = db.get(Workspace, workspace_id)
    assert workspace is not None
    if workspace.personal:
        raise HTTPException(status.HTTP_409_CONFLICT, "A personal workspace cannot be deleted")
    delete_with_documents(db, request, workspace, actor_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{workspace_id}/members",
    response_model=Page[MemberOut],
    responses=errors(*AUTHED),
    summary="Members and their roles",
)
def list_members(
    workspace_id: str, db: DbSession, user: CurrentUser, page: PageParams
) -> Page[MemberOut]:
    require_role(db, workspace_id, user, Role.viewer)
    stmt = (
        select(Membership)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Membership.created_at, Membership.id)
    )
    return paginate(db, stmt, page, _member_out)


@router.post(
    "/{workspace_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
    responses=errors(*AUTHED, 403, 409),
    summary="Invite someone by email with a role (owners): they join once they accept",
)
def add_member(
    workspace_id: str,
    body: MemberIn,
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    settings: AppSettings,
    user: SessionUser,
) -> object:
    """The same as ``POST /workspaces/{id}/invitations``: nobody joins without accepting,
    and the answer is the same whether or not the email has an account (adding people
    directly told which emails were registered, and put them in a workspace unasked)."""
    invite = InvitationIn(email=body.email, role=body.role)
    return invitations.create_invitation(
        workspace_id, invite, request, background, db, settings, user
    )


def _member(db: DbSession, workspace_id: str, user_id: str) -> Membership:
    membership = (
        db.scalar(
            select(Membership).where(
                Membership.workspace_id == workspace_id, Membership.user_id == user_id
            )
        )
        if is_id(user_id)
        else None
    )
    if membership is None:
        raise not_found("Member")
    return membership


def _keep_an_owner(db: DbSession, membership: Membership) -> None:
    """Refuse to remove or demote the last owner: a workspace must stay manageable.

    Two owners leaving at the same moment must not both pass the count, so it runs under
    the workspace's lock."""
    if membership.role != Role.owner.value:
        return
    lock_workspace(db, membership.workspace_id)
    try:
        db.refresh(membership)  # as committed by whoever held the lock before us
    except InvalidRequestError:  # removed meanwhile
        raise not_found("Member") from None
    if membership.role != Role.owner.value:
        return
    owners = db.scalar(
        select(func.count()).where(
            Membership.workspace_id == membership.workspace_id,
            Membership.role == Role.owner.value,
        )
    )
    if (owners or 0) <= 1:
        raise HTTPException(status.HTTP_409_CONFLICT, "A workspace needs at least one owner")


@router.patch(
    "/{workspace_id}/members/{user_id}",
    response_model=MemberOut,
    responses=errors(*AUTHED, 403, 409),
    summary="Change a member's role (owners)",
)
def update_member(
    workspace_id: str,
    user_id: str,
    body: MemberUpdate,
    request: Request,
    db: DbSession,
    user: SessionUser,
) -> MemberOut:
    require_role(db, workspace_id, user, Role.owner)
    membership = _member(db, workspace_id, user_id)
    if body.role != Role.owner:
        _keep_an_owner(db, membership)
        void_invitations(db, user_id, workspace_id)  # made with an owner's authority
    membership.role = body.role.value
    audit.record(
        db,
        request,
        "member.update",
        target_type="user",
        target_id=user_id,
        workspace_id=workspace_id,
        actor_id=user.id,
        role=body.role.value,
    )
    db.commit()
    return _member_out(membership)


@router.delete(
    "/{workspace_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403, 409),
    summary="Remove a member (owners), or leave (anyone, for themselves)",
)
def remove_member(
    workspace_id: str, user_id: str, request: Request, db: DbSession, user: SessionUser
) -> Response:
    require_role(db, workspace_id, user, Role.viewer if user_id == user.id else Role.owner)
    membership = _member(db, workspace_id, user_id)
    _keep_an_owner(db, membership)
    db.delete(membership)
    void_invitations(db, user_id, workspace_id)
    audit.record(
        db,
        request,
        "member.remove",
        target_type="user",
        target_id=user_id,
        workspace_id=workspace_id,
        actor_id=user.id,
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{workspace_id}/audit",
    response_model=Page[AuditEventOut],
    responses=errors(*AUTHED, 403),
    summary="The workspace's audit trail (owners)",
)
def list_audit(
    workspace_id: str, db: DbSession, user: CurrentUser, page: PageParams
) -> Page[AuditEventOut]:
    require_role(db, workspace_id, user, Role.owner)
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == workspace_id)
        .order_by(AuditEvent.created_at, AuditEvent.id)
    )
    return paginate(db, stmt, page, AuditEventOut.model_validate)
