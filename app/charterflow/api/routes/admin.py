"""Instance administration: list users, deactivate and reactivate them.

A deactivated user is refused everywhere at once: their access tokens (``is_active`` is
checked on every request, and their token version is bumped so reactivation does not revive
old tokens), their API keys, password sign-in, reset links and single sign-on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import select

from charterflow.api.deps import AdminUser, DbSession, PageParams, is_id, not_found, paginate
from charterflow.api.errors import errors
from charterflow.api.routes.auth import end_all_sessions
from charterflow.models import User
from charterflow.schemas.auth import AdminUserOut
from charterflow.schemas.common import Page
from charterflow.services import audit
from charterflow.services.workspaces import void_invitations

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/users",
    response_model=Page[AdminUserOut],
    responses=errors(401, 403),
    summary="Every user of the instance (instance admins only)",
)
def list_users(
    db: DbSession,
    admin: AdminUser,
    page: PageParams,
    q: Annotated[str | None, Query(max_length=320, description="Email contains.")] = None,
) -> object:
    stmt = select(User).order_by(User.created_at, User.id)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(User.email.like(f"%{escaped}%", escape="\\"))
    return paginate(db, stmt, page, AdminUserOut.model_validate)


def _set_active(db: DbSession, request: Request, admin: User, user_id: str, active: bool) -> User:
    user = db.get(User, user_id) if is_id(user_id) else None
    if user is None:
        raise not_found("User")
    if user.id == admin.id and not active:
        raise HTTPException(status.HTTP_409_CONFLICT, "You cannot deactivate yourself")
    if user.is_active != active:
        user.is_active = active
        end_all_sessions(user)
        if not active:
            void_invitations(db, user.id)
        audit.record(
            db,
            request,
            "user.activate" if active else "user.deactivate",
            target_type="user",
            target_id=user.id,
            actor_id=admin.id,
        )
        db.commit()
    return user


@router.post(
    "/users/{user_id}/deactivate",
    response_model=AdminUserOut,
    responses=errors(401, 403, 404, 409),
    summary="Deactivate a user: every token, key and sign-in of theirs is refused at once",
)
def deactivate(user_id: str, request: Request, db: DbSession, admin: AdminUser) -> object:
    return _set_active(db, request, admin, user_id, False)


@router.post(
    "/users/{user_id}/activate",
    response_model=AdminUserOut,
    responses=errors(401, 403, 404),
    summary="Reactivate a user (they sign in again; old tokens stay invalid)",
)
def activate(user_id: str, request: Request, db: DbSession, admin: AdminUser) -> object:
    return _set_active(db, request, admin, user_id, True)
