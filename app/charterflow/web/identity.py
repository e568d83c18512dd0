"""Web pages for identity: account (password, sign-out everywhere, API keys), the instance
admin page, password reset and accepting an invitation.

Like the other pages they call the API's route functions; changes that must replace the
session cookie (password change, sign-out everywhere) are HTML forms, the rest are made by
``identity.js`` through ``/api/v1``. Tokens from emailed links live in the URL fragment and
are read by the script, never by the server.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from charterflow.api.deps import AppSettings, DbSession, is_admin, limit_by_ip
from charterflow.api.routes import admin as admin_routes
from charterflow.api.routes import auth as auth_routes
from charterflow.models import ApiToken, User
from charterflow.schemas.auth import PasswordChangeIn
from charterflow.web.routes import (
    PAGE_LIMIT,
    MaybeUser,
    PageUser,
    _everything,
    describe_error,
    redirect,
    render,
    validation_message,
)
from charterflow.web.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_ok,
    end_session,
    start_session,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(limit_by_ip)])
Csrf = Annotated[str, Form(alias=CSRF_FIELD)]


def _account(
    request: Request, db: DbSession, user: User, settings: AppSettings, **extra: object
) -> Response:
    keys = db.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at, ApiToken.id)
        .limit(PAGE_LIMIT)
    ).all()
    context = {
        "user": user,
        "keys": keys,
        "is_admin": is_admin(settings, user),
        "has_password": user.password_hash.startswith("$"),
        "error": None,
        **extra,
    }
    return render(request, "account.html", context, int(str(extra.get("status_code", 200))))


@router.get("/app/account")
def account_page(
    request: Request, db: DbSession, user: PageUser, settings: AppSettings
) -> Response:
    return _account(request, db, user, settings)


@router.post("/app/account/password")
def change_password(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user: PageUser,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    csrf_token: Csrf = "",
) -> Response:
    """A form, not a script call: the new session token must replace the cookie."""
    if not csrf_ok(
        settings, request.cookies.get(CSRF_COOKIE), csrf_token, request.cookies.get(SESSION_COOKIE)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form had expired; reload and try again")
    try:
        body = PasswordChangeIn(current_password=current_password, new_password=new_password)
        token = auth_routes.change_password(body, request, db, settings, user)
    except ValidationError as exc:
        return _account(request, db, user, settings, error=validation_message(exc), status_code=422)
    except HTTPException as exc:
        message = describe_error(exc.status_code, exc.detail)
        return _account(request, db, user, settings, error=message, status_code=exc.status_code)
    response = redirect("/app/account?changed=1")
    start_session(response, settings, cast(dict[str, str], token)["access_token"])
    return response


@router.post("/app/account/logout-all")
def logout_all(
    request: Request, db: DbSession, settings: AppSettings, user: PageUser, csrf_token: Csrf = ""
) -> Response:
    if not csrf_ok(
        settings, request.cookies.get(CSRF_COOKIE), csrf_token, request.cookies.get(SESSION_COOKIE)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form had expired; reload and try again")
    auth_routes.end_all_sessions(user)
    db.commit()
    response = redirect("/login")
    end_session(response, settings)
    return response


@router.get("/admin")
def admin_page(
    request: Request, db: DbSession, user: PageUser, settings: AppSettings, q: str = ""
) -> Response:
    if not is_admin(settings, user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Requires an instance admin")
    page = admin_routes.list_users(db, user, _everything(), q=q[:320] or None)
    context = {"user": user, "users": page.items, "total": page.total, "q": q[:320]}  # type: ignore[attr-defined]
    return render(request, "admin.html", context)


@router.get("/reset-password")
def reset_password_page(request: Request, user: MaybeUser, settings: AppSettings) -> Response:
    return render(
        request, "reset_password.html", {"user": user, "smtp_enabled": settings.smtp_enabled}
    )


@router.get("/verify-email")
def verify_email_page(request: Request, user: MaybeUser) -> Response:
    """Open to everyone: the script sends the link's token to ``POST /auth/verify-email``."""
    return render(request, "verify_email.html", {"user": user})


@router.get("/invitations/accept")
def accept_invitation_page(request: Request, user: MaybeUser) -> Response:
    """Open to everyone: the script keeps the link's token while its reader signs in."""
    return render(request, "accept_invitation.html", {"user": user})
