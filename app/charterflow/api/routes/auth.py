"""Register, log in, who am I; sessions (refresh, sign-out everywhere), password change, and
personal API keys."""

from __future__ import annotations

import time
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
)
from charterflow.api.errors import errors
from charterflow.models import ApiToken, PasswordReset, User, utcnow
from charterflow.ratelimit import RateLimiter
from charterflow.schemas.auth import (
    AcceptedOut,
    ApiTokenCreated,
    ApiTokenIn,
    ApiTokenOut,
    LoginIn,
    PasswordChangeIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RegisterIn,
    RegisterOut,
    TokenOut,
    UserOut,
    VerifyEmailIn,
)
from charterflow.schemas.common import Page
from charterflow.security import (
    create_access_token,
    email_token_matches,
    email_verification_subject,
    email_verification_token,
    hash_password,
    needs_rehash,
    new_secret_token,
    token_hash,
    verify_password,
)
from charterflow.services import api_keys, audit, mail, sessions
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
        "access_token": create_access_token(settings, user.id, user.token_version),
        "token_type": "bearer",
        "expires_in": settings.jwt_ttl_seconds,
    }


def password_login_allowed(settings: AppSettings) -> None:
    """403 when PASSWORD_LOGIN_ENABLED is false (single sign-on is then the only way in)."""
    if not settings.password_login_enabled:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "Password sign-in is turned off; use single sign-on"
        )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterOut,
    responses=errors(403, 409),
    summary="Create an account (and its personal workspace); returns a token",
)
def register(
    body: RegisterIn,
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    settings: AppSettings,
) -> object:
    """Taken emails answer 409 (the form must say so), which tells whether an account exists:
    that probe is rate-limited per client, and costs as long as a registration (the password
    is hashed first). A uniform answer needs email confirmation, which needs SMTP.

    The email starts unverified: with SMTP a link to verify it is sent after the response.
    Until it is verified, single sign-on does not link to the account and ``ADMIN_EMAILS``
    does not make it an admin (anyone can type anyone's address)."""
    password_login_allowed(settings)
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
    send_verification(settings, background, user)
    return {"user": user, **_token(settings, user)}


def send_verification(settings: AppSettings, background: BackgroundTasks, user: User) -> bool:
    """Queue the email with the link that verifies ``user``'s address; False without SMTP."""
    if not settings.smtp_enabled:
        return False
    ttl = settings.email_verification_ttl_seconds
    token = email_verification_token(settings, user.id, user.email, ttl)
    text = (
        f"Someone created a CharterFlow account with this address ({user.email}).\n\n"
        f"If it was you, confirm the address here (the link works for {ttl // 3600} hours):\n"
        f"{app_link(settings, 'verify-email', token)}\n\n"
        "If it was not you, do not follow the link: the account then never becomes yours to\n"
        "share. To take it over, reset its password from the sign-in page.\n"
    )
    background.add_task(mail.send, settings, user.email, "Confirm your CharterFlow email", text)
    return True


@router.post(
    "/verify-email",
    response_model=UserOut,
    responses=errors(400),
    summary="Verify the account's email with the token of an emailed link",
)
def verify_email(
    body: VerifyEmailIn, request: Request, db: DbSession, settings: AppSettings
) -> object:
    """No session needed: the token names the user and the email it was sent to (a token
    for a former address of the account is refused)."""
    enforce_rate_limit(
        request, f"verify-email:ip:{_client(request)}", settings.login_rate_limit_per_minute
    )
    parsed = email_verification_subject(settings, body.token)
    user = db.get(User, parsed[0]) if parsed is not None and is_id(parsed[0]) else None
    if (
        parsed is None
        or user is None
        or not user.is_active
        or not email_token_matches(settings, user.id, user.email, parsed[1], parsed[2])
    ):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "This link is invalid or has expired")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        audit.record(
            db,
            request,
            "user.email_verify",
            target_type="user",
            target_id=user.id,
            actor_id=user.id,
        )
        db.commit()
    return user


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    responses=errors(401, 403, 409),
    summary="Email the caller a new link that verifies their address",
)
def resend_verification(
    request: Request, background: BackgroundTasks, settings: AppSettings, user: SessionUser
) -> object:
    """409 without SMTP (nothing can be sent) or when the address is verified already."""
    if user.email_verified_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "This email is verified already")
    limit = settings.password_reset_rate_limit_per_minute
    enforce_rate_limit(request, f"verify-email:user:{user.id}", limit)
    if not send_verification(settings, background, user):
        raise HTTPException(
            status.HTTP_409_CONFLICT, "This CharterFlow sends no email; ask an administrator"
        )
    return {"detail": "A link to verify your email has been sent."}


@router.post(
    "/login",
    response_model=TokenOut,
    responses=errors(401, 403),
    summary="Exchange email and password for an access token",
)
def login(body: LoginIn, request: Request, db: DbSession, settings: AppSettings) -> object:
    password_login_allowed(settings)
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
def logout(request: Request, db: DbSession, user: SessionUser) -> Response:
    sessions.revoke(db, request.state.token_claims)
    audit.record(
        db, request, "auth.logout", target_type="user", target_id=user.id, actor_id=user.id
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserOut, responses=errors(401), summary="The caller")
def me(user: CurrentUser) -> User:
    return user


def end_all_sessions(user: User) -> None:
    """Every access token of ``user`` is refused from now on (they carry the old version)."""
    user.token_version += 1


@router.post(
    "/refresh",
    response_model=TokenOut,
    responses=errors(401, 403),
    summary="Exchange a valid access token for a fresh one (the old one is revoked)",
)
def refresh(request: Request, db: DbSession, settings: AppSettings, user: SessionUser) -> object:
    """Sliding sessions: a client that refreshes before expiry stays signed in; one that
    stops (closed tab, stolen and unused token) is out after ``JWT_TTL_SECONDS``."""
    sessions.revoke(db, request.state.token_claims)
    return _token(settings, user)


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403),
    summary="Sign out everywhere: every access token of the caller is refused from now on",
)
def logout_all(request: Request, db: DbSession, user: SessionUser) -> Response:
    end_all_sessions(user)
    audit.record(
        db, request, "auth.logout_all", target_type="user", target_id=user.id, actor_id=user.id
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    response_model=TokenOut,
    responses=errors(400, 401, 403),
    summary="Change the password (current one required); ends every other session",
)
def change_password(
    body: PasswordChangeIn,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user: SessionUser,
) -> object:
    """Returns a fresh token for the caller; every other session (all older tokens) ends.
    API keys are left alone: they are revoked one by one at ``DELETE /auth/tokens/{id}``."""
    enforce_rate_limit(request, f"password:user:{user.id}", settings.login_rate_limit_per_minute)
    if not verify_password(body.current_password, user.password_hash):
        audit.record(
            db,
            request,
            "auth.password_change_failed",
            target_type="user",
            target_id=user.id,
            actor_id=user.id,
        )
        db.commit()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The current password is not correct")
    user.password_hash = hash_password(body.new_password)
    end_all_sessions(user)
    audit.record(
        db, request, "auth.password_change", target_type="user", target_id=user.id, actor_id=user.id
    )
    db.commit()
    return _token(settings, user)


@router.get(
    "/tokens",
    response_model=Page[ApiTokenOut],
    responses=errors(401, 403),
    summary="The caller's API keys (live ones; the keys themselves are never shown again)",
)
def list_tokens(db: DbSession, user: SessionUser, page: PageParams) -> object:
    stmt = (
        select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at, ApiToken.id)
    )
    return paginate(db, stmt, page, ApiTokenOut.model_validate)


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiTokenCreated,
    responses=errors(401, 403, 409),
    summary="Create an API key; the response shows it once",
)
def create_token(
    body: ApiTokenIn, request: Request, db: DbSession, settings: AppSettings, user: SessionUser
) -> object:
    if api_keys.active_count(db, user) >= settings.api_key_max_per_user:
        raise HTTPException(status.HTTP_409_CONFLICT, "Too many API keys; revoke one first")
    row, token = api_keys.create(db, user, body.name, body.expires_at, body.read_only)
    audit.record(
        db,
        request,
        "api_key.create",
        target_type="api_key",
        target_id=row.id,
        actor_id=user.id,
        read_only=row.read_only,
    )
    db.commit()
    return {**ApiTokenOut.model_validate(row).model_dump(), "token": token}


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404),
    summary="Revoke an API key at once",
)
def revoke_token(token_id: str, request: Request, db: DbSession, user: CurrentUser) -> Response:
    """A key may revoke itself (a script cleaning up), never another user's (404)."""
    row = db.get(ApiToken, token_id) if is_id(token_id) else None
    used = request.state.api_key
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        raise not_found("API key")
    if used is not None and used.id != row.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "An API key may revoke only itself")
    row.revoked_at = utcnow()
    audit.record(
        db, request, "api_key.revoke", target_type="api_key", target_id=row.id, actor_id=user.id
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


RESET_ANSWER = "If an account exists for this email, a reset link has been sent to it."


def app_link(settings: AppSettings, page: str, token: str) -> str:
    """A link to a web page carrying a secret token in the fragment: browsers never send the
    fragment, so the token stays out of server, proxy and Referer logs."""
    return f"{settings.app_url.rstrip('/')}/{page}#token={token}"


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    responses=errors(),
    summary="Email a single-use password-reset link (same answer whether the account exists)",
)
def request_password_reset(
    body: PasswordResetIn,
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    settings: AppSettings,
) -> object:
    """No account enumeration: the answer, its status and its rate limits are the same for
    known and unknown emails, and the email is sent after the response."""
    limit = settings.password_reset_rate_limit_per_minute
    enforce_rate_limit(request, f"reset:ip:{_client(request)}", limit * 5)
    enforce_rate_limit(request, f"reset:email:{body.email}", limit)
    user = db.scalar(select(User).where(User.email == body.email))
    if user is not None and user.is_active and settings.smtp_enabled:
        token = new_secret_token()
        db.add(
            PasswordReset(
                user_id=user.id,
                token_hash=token_hash(token),
                expires_at=utcnow() + timedelta(seconds=settings.password_reset_ttl_seconds),
            )
        )
        audit.record(
            db, request, "auth.password_reset_request", target_type="user", target_id=user.id
        )
        db.commit()
        minutes = settings.password_reset_ttl_seconds // 60
        text = (
            f"Someone asked to reset the password of your CharterFlow account ({user.email}).\n\n"
            f"Choose a new password here (the link works once, for {minutes} minutes):\n"
            f"{app_link(settings, 'reset-password', token)}\n\n"
            "If it was not you, ignore this email: your password stays as it is.\n"
        )
        background.add_task(
            mail.send, settings, user.email, "Reset your CharterFlow password", text
        )
    return {"detail": RESET_ANSWER}


@router.post(
    "/password-reset/confirm",
    response_model=TokenOut,
    responses=errors(400),
    summary="Set a new password with an emailed reset token (once); signs in",
)
def confirm_password_reset(
    body: PasswordResetConfirmIn, request: Request, db: DbSession, settings: AppSettings
) -> object:
    """The token works once and until it expires; using it ends every session of the user
    and voids their other reset links."""
    enforce_rate_limit(
        request, f"reset-confirm:ip:{_client(request)}", settings.login_rate_limit_per_minute
    )
    reset = db.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == token_hash(body.token))
    )
    now = utcnow()
    user = db.get(User, reset.user_id) if reset is not None else None
    if (
        reset is None
        or reset.used_at is not None
        or reset.expires_at <= now
        or user is None
        or not user.is_active
    ):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "This reset link is invalid or has expired"
        )
    for other in db.scalars(
        select(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
        )
    ):
        other.used_at = now
    user.password_hash = hash_password(body.new_password)
    end_all_sessions(user)
    if user.email_verified_at is None:
        # The link proved the mailbox. Keys made while it was unproven may be an impostor's.
        user.email_verified_at = now
        for key in db.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ):
            key.revoked_at = now
    audit.record(
        db, request, "auth.password_reset", target_type="user", target_id=user.id, actor_id=user.id
    )
    db.commit()
    return _token(settings, user)
