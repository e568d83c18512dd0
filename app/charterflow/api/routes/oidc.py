"""Single sign-on through the configured OpenID provider (authorization code + PKCE).

``/auth/oidc/login`` sends the browser to the provider; ``/auth/oidc/callback`` checks what
comes back (``services.oidc``), then signs the browser in with the session cookie.

Accounts: the first sign-in creates the user, or links to the existing account with the same
email (the provider must assert ``email_verified``); a deactivated account is refused. A
password account links only once its holder verified the email (``email_verified_at``): else
whoever registered the address first, with their own password, would share the account of
the address's real owner (409 until it is verified or its password reset by email).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from charterflow.api.deps import AppSettings, DbSession
from charterflow.api.errors import errors
from charterflow.api.routes.auth import create_access_token
from charterflow.models import User, utcnow
from charterflow.security import TokenClaims
from charterflow.services import audit, oidc, sessions
from charterflow.services.workspaces import create_owned_workspace
from charterflow.web.routes import safe_next
from charterflow.web.session import secure_cookies, start_session

router = APIRouter(prefix="/auth/oidc", tags=["auth"])
UNUSABLE_PASSWORD = "!"  # noqa: S105 - not a hash: no password ever verifies against it
FLOW_PATH = "/api/v1/auth/oidc"


def _provider(request: Request, settings: AppSettings) -> oidc.Provider:
    if not settings.oidc_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Single sign-on is not configured")
    state = request.app.state
    if getattr(state, "oidc_provider", None) is None:
        state.oidc_provider = oidc.Provider(settings)
    return state.oidc_provider  # type: ignore[no-any-return]


def _fail(exc: oidc.OidcError) -> HTTPException:
    return HTTPException(exc.status_code, str(exc))


@router.get(
    "/login",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={**errors(400, 404), 302: {"description": "To the identity provider"}},
    summary="Start single sign-on: redirects to the identity provider",
)
def oidc_login(
    request: Request,
    settings: AppSettings,
    next: Annotated[str, Query(max_length=2000, description="Path to land on.")] = "/app",
) -> RedirectResponse:
    provider = _provider(request, settings)
    try:
        url, cookie = oidc.start(settings, provider, safe_next(next))
    except oidc.OidcError as exc:
        raise _fail(exc) from None
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        oidc.FLOW_COOKIE,
        cookie,
        max_age=oidc.FLOW_TTL_SECONDS,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=secure_cookies(settings),
        path=FLOW_PATH,
    )
    return response


def _user_for(db: DbSession, request: Request, settings: AppSettings, who: oidc.Identity) -> User:
    user = db.scalar(select(User).where(User.email == who.email))
    if user is None:
        user = User(
            email=who.email,
            name=who.name,
            password_hash=UNUSABLE_PASSWORD,
            email_verified_at=utcnow(),
        )
        db.add(user)
        db.flush()
        audit.record(
            db,
            request,
            "user.register",
            target_type="user",
            target_id=user.id,
            actor_id=user.id,
            via="oidc",
        )
        create_owned_workspace(db, request, user, f"{who.name}'s workspace", personal=True)
    if not user.is_active:
        raise _fail(oidc.OidcForbidden("This account is deactivated"))
    if user.email_verified_at is None:
        if user.has_password:
            audit.record(
                db, request, "auth.oidc_link_refused", target_type="user", target_id=user.id
            )
            db.commit()
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "An account with this email exists but its email was never verified. Verify "
                "it from the emailed link, or reset its password from the sign-in page, then "
                "sign in with single sign-on again.",
            )
        user.email_verified_at = utcnow()
    if settings.oidc_admin_groups:
        user.is_admin = bool(set(who.groups) & set(settings.oidc_admin_groups))
    return user


@router.get(
    "/callback",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses={**errors(400, 403, 404, 409), 303: {"description": "Signed in; to the app"}},
    summary="Where the identity provider returns; signs the browser in",
)
def oidc_callback(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> RedirectResponse:
    provider = _provider(request, settings)
    try:
        if error:
            raise oidc.OidcError("The identity provider did not sign you in")
        flow = oidc.read_flow(settings, request.cookies.get(oidc.FLOW_COOKIE), state)
        if sessions.is_revoked(db, flow.id):
            raise oidc.OidcError("This sign-in was already used; start again")
        # Used from now on, whatever happens next: a state works once.
        sessions.revoke(db, TokenClaims(subject="", jti=flow.id, expires_at=flow.expires_at))
        if not code:
            raise oidc.OidcError("The identity provider sent no code")
        id_token = oidc.exchange_code(settings, provider, code, flow)
        who = oidc.verify_id_token(settings, provider, id_token, flow.nonce)
    except oidc.OidcError as exc:
        audit.record(db, request, "auth.oidc_failed", target_type="user", reason=str(exc))
        db.commit()
        raise _fail(exc) from None
    user = _user_for(db, request, settings, who)
    audit.record(
        db,
        request,
        "auth.login",
        target_type="user",
        target_id=user.id,
        actor_id=user.id,
        via="oidc",
    )
    try:
        db.commit()
    except IntegrityError:  # the same new user signing in twice at once
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "Sign-in raced itself; try again") from None
    response = RedirectResponse(flow.next_path, status_code=status.HTTP_303_SEE_OTHER)
    start_session(response, settings, create_access_token(settings, user.id, user.token_version))
    response.delete_cookie(oidc.FLOW_COOKIE, path=FLOW_PATH)
    return response
