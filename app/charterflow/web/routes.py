"""Server-rendered pages of the web UI.

Pages read through the same functions and access rules as the JSON API (calling its route
functions directly), so the UI has no business logic of its own. Sign-in, registration and
sign-out are HTML forms that set or clear the session cookie; every other change is made by
the page scripts through ``/api/v1`` with that cookie and the CSRF header (see ``session``).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from charterflow import __version__
from charterflow.api.deps import (
    AppSettings,
    DbSession,
    Pagination,
    authenticate_and_limit,
    get_readable_notebook,
    limit_by_ip,
    require_role,
)
from charterflow.api.routes import auth as auth_routes
from charterflow.api.routes import invitations as invitation_routes
from charterflow.api.routes import notebooks as notebook_routes
from charterflow.api.routes import workspaces as workspace_routes
from charterflow.models import Role, User, Workspace
from charterflow.schemas.auth import LoginIn, RegisterIn
from charterflow.security import InvalidToken, TokenClaims, create_access_token, decode_claims
from charterflow.services import api_keys, sessions
from charterflow.web.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    PAGE_CSP,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token_valid,
    end_session,
    new_csrf_token,
    set_csrf_cookie,
    set_session_cookie,
    start_session,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_PREFIXES = (
    "/app",
    "/login",
    "/register",
    "/logout",
    "/admin",
    "/reset-password",
    "/verify-email",
    "/invitations",
)
# Pages list at most this many workspaces, notebooks, documents or members.
PAGE_LIMIT = 100
FIELD_LABELS = {"email": "Email", "password": "Password", "name": "Name"}

templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
)
router = APIRouter(include_in_schema=False, dependencies=[Depends(limit_by_ip)])


class LoginRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in page."""


def is_page_path(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


def safe_next(target: str | None) -> str:
    """Only a path on this site (not ``//host`` or ``/\\host``) may follow sign-in."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/app"


def describe_error(code: int, detail: Any = None, retry_after: str | None = None) -> str:
    """A sentence a person can act on, for each status the API can answer."""
    text = detail if isinstance(detail, str) else ""
    if code == 401:
        return text or "Please sign in again."
    if code == 403:
        return f"Not allowed: {text}." if text else "You are not allowed to do that."
    if code == 404:
        return "Not found. It may have been deleted, or you are not a member of its workspace."
    if code == 409:
        return text or "That conflicts with the current state; reload and try again."
    if code == 422:
        return text or "Some fields are not valid."
    if code == 429:
        wait = f" in {retry_after} seconds" if retry_after else " in a moment"
        return f"Too many requests. Try again{wait}."
    if code == 503:
        return "The service is temporarily unavailable. Try again shortly."
    return text or f"Something went wrong (HTTP {code})."


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = str(error["loc"][-1]) if error["loc"] else ""
        parts.append(f"{FIELD_LABELS.get(field, field)}: {error['msg']}")
    return "; ".join(parts)


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a page with its CSRF token, the page CSP and no caching of private data.

    Sliding sessions: a page opened with a session past half its lifetime gets a fresh token
    (and a CSRF token bound to it), so someone using the UI stays signed in while an idle or
    copied cookie still dies within ``JWT_TTL_SECONDS``. The older token is left to expire:
    requests already in flight with it still succeed."""
    settings = request.app.state.settings
    token = request.cookies.get(CSRF_COOKIE)
    session_token = request.cookies.get(SESSION_COOKIE)
    refreshed = _sliding_refresh(request, settings)
    if refreshed:
        session_token = refreshed
    fresh = not csrf_token_valid(settings, token, session_token)
    if fresh:
        token = new_csrf_token(settings, session_token)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "csrf_token": token,
            "version": __version__,
            "user": None,
            **sign_in_options(settings),
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    if refreshed:
        set_session_cookie(response, settings, refreshed)
    if fresh:
        assert token is not None
        set_csrf_cookie(response, settings, token)
    return response


def _sliding_refresh(request: Request, settings: Any) -> str | None:
    """A fresh token when the page's session (validated by ``optional_user`` on this request,
    revocation and token version included) has used more than half its lifetime."""
    claims: TokenClaims | None = getattr(request.state, "token_claims", None)
    if claims is None or not request.cookies.get(SESSION_COOKIE):
        return None
    left = (claims.expires_at - datetime.now(UTC)).total_seconds()
    if left > settings.jwt_ttl_seconds / 2:
        return None
    return create_access_token(settings, claims.subject, claims.version)


def sign_in_options(settings: Any) -> dict[str, Any]:
    """What the sign-in pages offer: single sign-on, passwords, password reset by email."""
    return {
        "oidc_enabled": settings.oidc_enabled,
        "oidc_name": settings.oidc_display_name,
        "password_login": settings.password_login_enabled,
        "smtp_enabled": settings.smtp_enabled,
    }


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def optional_user(request: Request, db: DbSession, settings: AppSettings) -> User | None:
    """The user of a valid session cookie, checked exactly as a bearer token is. Only a
    session token (a JWT) is a session: an API key set as the cookie is no one, else a key
    would pass the pages' rules (which are for people signed in, not for keys)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or api_keys.is_api_key(token):
        return None
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    try:
        return authenticate_and_limit(request, db, settings, credentials)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            return None
        raise


MaybeUser = Annotated[User | None, Depends(optional_user)]


def required_user(user: MaybeUser) -> User:
    if user is None:
        raise LoginRequired
    return user


PageUser = Annotated[User, Depends(required_user)]
Field = Annotated[str, Form()]


async def login_required(request: Request, _exc: Exception) -> Response:
    path = request.url.path
    return redirect(f"/login?next={quote(path)}" if path != "/" else "/login")


async def page_http_error(request: Request, exc: Exception) -> Response:
    """An HTML error page on UI paths; the API's JSON error everywhere else."""
    assert isinstance(exc, StarletteHTTPException)
    if not is_page_path(request.url.path):
        return await http_exception_handler(request, exc)
    retry_after = (exc.headers or {}).get("Retry-After")
    message = describe_error(exc.status_code, exc.detail, retry_after)
    headers = {"Retry-After": retry_after} if retry_after else None
    context = {"status": exc.status_code, "message": message, "user": _signed_in(request)}
    return render(request, "error.html", context, exc.status_code, headers)


def _signed_in(request: Request) -> User | None:
    """The session's user for an error page's header (handlers get no dependencies)."""
    db = request.app.state.session_factory()
    try:
        return optional_user(request, db, request.app.state.settings)
    except HTTPException:
        return None
    finally:
        db.close()


@router.get("/")
def home(user: MaybeUser) -> Response:
    return redirect("/app" if user else "/login")


def _form_page(
    request: Request,
    name: str,
    values: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    context = {"values": values, "error": error, "next": safe_next(values.get("next"))}
    return render(request, name, context, status_code, headers)


def _csrf_refused(request: Request, name: str, values: dict[str, str]) -> Response:
    message = "Your form had expired, so nothing was sent. Please try again."
    return _form_page(request, name, values, message, status.HTTP_403_FORBIDDEN)


def _api_refused(
    request: Request, name: str, values: dict[str, str], exc: HTTPException
) -> Response:
    retry_after = (exc.headers or {}).get("Retry-After")
    message = describe_error(exc.status_code, exc.detail, retry_after)
    headers = {"Retry-After": retry_after} if retry_after else None
    return _form_page(request, name, values, message, exc.status_code, headers)


@router.get("/login")
def login_page(request: Request, user: MaybeUser, next: str = "/app") -> Response:
    if user is not None:
        return redirect(safe_next(next))
    return _form_page(request, "login.html", {"next": next})


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    email: Field = "",
    password: Field = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next: Field = "/app",
) -> Response:
    values = {"email": email, "next": next}
    if not csrf_ok(settings, request.cookies.get(CSRF_COOKIE), csrf_token, _session(request)):
        return _csrf_refused(request, "login.html", values)
    try:
        body = LoginIn(email=email, password=password)
        token = auth_routes.login(body, request, db, settings)
    except ValidationError as exc:
        return _form_page(request, "login.html", values, validation_message(exc), 422)
    except HTTPException as exc:
        return _api_refused(request, "login.html", values, exc)
    response = redirect(safe_next(next))
    start_session(response, settings, cast(dict[str, str], token)["access_token"])
    return response


@router.get("/register")
def register_page(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return redirect("/app")
    return _form_page(request, "register.html", {})


@router.post("/register")
def register(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    settings: AppSettings,
    name: Field = "",
    email: Field = "",
    password: Field = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    values = {"name": name, "email": email}
    if not csrf_ok(settings, request.cookies.get(CSRF_COOKIE), csrf_token, _session(request)):
        return _csrf_refused(request, "register.html", values)
    try:
        body = RegisterIn(name=name, email=email, password=password)
        created = auth_routes.register(body, request, background, db, settings)  # emails sent after
    except ValidationError as exc:
        return _form_page(request, "register.html", values, validation_message(exc), 422)
    except HTTPException as exc:
        return _api_refused(request, "register.html", values, exc)
    response = redirect("/app")
    start_session(response, settings, cast(dict[str, str], created)["access_token"])
    return response


def _session(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


@router.post("/logout")
def logout(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Sign out: the session's token is revoked, so a copy of the cookie stops working too."""
    if not csrf_ok(settings, request.cookies.get(CSRF_COOKIE), csrf_token, _session(request)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the sign-out form had expired; try again")
    token = _session(request)
    if token:
        with suppress(InvalidToken):  # not ours: nothing to revoke
            sessions.revoke(db, decode_claims(settings, token, verify_exp=False))
    response = redirect("/login")
    end_session(response, settings)
    return response


def _everything() -> Pagination:
    return Pagination(limit=PAGE_LIMIT, offset=0)


@router.get("/app")
def dashboard(request: Request, db: DbSession, user: PageUser) -> Response:
    workspaces = workspace_routes.list_workspaces(db, user, _everything()).items
    notebooks = notebook_routes.notebooks_page(db, db, user, _everything())
    by_workspace: dict[str, list[Any]] = defaultdict(list)
    for notebook in notebooks.items:
        by_workspace[notebook.workspace_id].append(notebook)
    writable = [w for w in workspaces if w.role.allows(Role.editor)]
    context = {
        "user": user,
        "workspaces": workspaces,
        "writable": writable,
        "by_workspace": by_workspace,
        "truncated": notebooks.total > len(notebooks.items),
    }
    return render(request, "dashboard.html", context)


@router.get("/app/notebooks/{notebook_id}")
def notebook_page(
    notebook_id: str, request: Request, db: DbSession, user: PageUser, settings: AppSettings
) -> Response:
    notebook = get_readable_notebook(notebook_id, db, user)
    membership = require_role(db, notebook.workspace_id, user, Role.viewer)
    documents = notebook_routes.list_documents(notebook, db, _everything())
    context = {
        "user": user,
        "notebook": notebook,
        "workspace": db.get(Workspace, notebook.workspace_id),
        "documents": documents.items,
        "documents_total": documents.total,
        "can_edit": Role(membership.role).allows(Role.editor),
        "max_upload_bytes": settings.max_upload_bytes,
        "max_upload_mb": f"{settings.max_upload_bytes / 1024 / 1024:g}",
    }
    return render(request, "notebook.html", context)


@router.get("/app/workspaces/{workspace_id}")
def workspace_page(workspace_id: str, request: Request, db: DbSession, user: PageUser) -> Response:
    workspace = workspace_routes.get_workspace(workspace_id, db, user)
    members = workspace_routes.list_members(workspace_id, db, user, _everything())
    context = {
        "user": user,
        "workspace": workspace,
        "members": members.items,
        "is_owner": workspace.role == Role.owner,
        "roles": [r.value for r in Role],
        "invitations": (
            invitation_routes.list_invitations(workspace_id, db, user, _everything()).items
            if workspace.role == Role.owner
            else []
        ),
    }
    return render(request, "workspace.html", context)
