"""Register, log in, and who am I."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from charterflow.api.deps import AppSettings, CurrentUser, DbSession, enforce_rate_limit
from charterflow.api.errors import errors
from charterflow.models import User
from charterflow.ratelimit import RateLimiter
from charterflow.schemas.auth import LoginIn, RegisterIn, RegisterOut, TokenOut, UserOut
from charterflow.security import (
    create_access_token,
    hash_password,
    needs_rehash,
    verify_password,
)
from charterflow.services import audit, sessions
from charterflow.services.workspaces import create_owned_workspace

router = APIRouter(prefix="/auth", tags=["auth"])


def _client(request: Request) -> str:
    """The client address (a trusted proxy's ``X-Forwarded-For`` already applied)."""
    return request.client.host if request.client else "unknown"


def _slow_down_if_targeted(request: Request, email: str, settings: AppSettings) -> None:
    """Many attempts at one email from many clients: answer slowly rather than refuse, so
    guessing stays slow but the owner, from their own client, can still sign in."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.hit(f"login:email:{email}", settings.login_rate_limit_per_minute).allowed:
        time.sleep(settings.login_slowdown_seconds)


def _token(settings: AppSettings, user: User) -> dict[str, object]:
    return {
        "access_token": create_access_token(settings, user.id),
        "token_type": "bearer",
        "expires_in": settings.jwt_ttl_seconds,
    }


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterOut,
    responses=errors(409),
    summary="Create an account (and its personal workspace); returns a token",
)
def register(body: RegisterIn, request: Request, db: DbSession, settings: AppSettings) -> object:
    """Taken emails answer 409 (the form must say so), which tells whether an account exists:
    that probe is rate-limited per client, and costs as long as a registration (the password
    is hashed first). A uniform answer needs email confirmation, which needs SMTP."""
    enforce_rate_limit(
        request, f"register:ip:{_client(request)}", settings.register_rate_limit_per_minute
    )
    password_hash = hash_password(body.password)
    if db.scalar(select(User.id).where(User.email == body.email)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "An account with this email exists")
    user = User(email=body.email, name=body.name, password_hash=password_hash)
    db.add(user)
    db.flush()
    audit.record(
        db, request, "user.register", target_type="user", target_id=user.id, actor_id=user.id
    )
    create_owned_workspace(db, request, user, f"{body.name}'s workspace", personal=True)
    try:
        db.commit()
    except IntegrityError:  # a concurrent registration won the unique email
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "An account with this email exists") from None
    return {"user": user, **_token(settings, user)}


@router.post(
    "/login",
    response_model=TokenOut,
    responses=errors(401),
    summary="Exchange email and password for an access token",
)
def login(body: LoginIn, request: Request, db: DbSession, settings: AppSettings) -> object:
    ip, limit = _client(request), settings.login_rate_limit_per_minute
    enforce_rate_limit(request, f"login:pair:{body.email}:{ip}", limit)
    enforce_rate_limit(request, f"login:ip:{ip}", limit * 5)
    _slow_down_if_targeted(request, body.email, settings)
    user = db.scalar(select(User).where(User.email == body.email))
    ok = verify_password(body.password, user.password_hash if user else None)
    if not ok or user is None or not user.is_active:
        audit.record(
            db,
            request,
            "auth.login_failed",
            target_type="user",
            target_id=user.id if user else None,
            email=body.email,
        )
        db.commit()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect email or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(body.password)
    audit.record(db, request, "auth.login", target_type="user", target_id=user.id, actor_id=user.id)
    db.commit()
    return _token(settings, user)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401),
    summary="Revoke the caller's access token (it is refused from now on)",
)
def logout(request: Request, db: DbSession, user: CurrentUser) -> Response:
    sessions.revoke(db, request.state.token_claims)
    audit.record(
        db, request, "auth.logout", target_type="user", target_id=user.id, actor_id=user.id
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserOut, responses=errors(401), summary="The caller")
def me(user: CurrentUser) -> User:
    return user
