"""Dependencies shared by the routers: database session, settings, the caller, access rules.

Access rules: a resource in a workspace the caller does not belong to does not exist for them
(404, so ids cannot be probed); inside their workspaces viewers read, editors also write and
owners also manage members and the workspace itself (403 when the role is too low).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from charterflow.models import (
    Charter,
    Conversation,
    Document,
    Membership,
    Note,
    Notebook,
    Role,
    User,
)
from charterflow.ratelimit import RateLimiter, Verdict
from charterflow.schemas.common import Page
from charterflow.security import InvalidToken, TokenClaims, decode_claims
from charterflow.services import api_keys, sessions
from charterflow.settings import Settings

T = TypeVar("T")
Out = TypeVar("Out", bound=BaseModel)
M = TypeVar("M", Notebook, Document, Conversation, Note, Charter)
_ID = re.compile(r"^[0-9a-f]{32}$")
bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer <access_token>` or `Bearer <API key>` (`cfp_...`)",
)


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's session. Opening one does no I/O, so it is done on the event loop;
    closing it (a rollback, the connection back to the pool) is done on a worker thread.

    The cheap dependencies here are ``async def`` for the same reason: FastAPI runs each
    plain ``def`` dependency on the thread pool, a hand-off that cost more than their work.
    """
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        await close_session(session)


async def close_session(session: Session) -> None:
    """Close ``session``: on a worker thread if it holds a connection (a rollback to send),
    else right here (a request whose caller was a recent one may never use it)."""
    if session.in_transaction():
        await run_in_threadpool(session.close)
    else:
        session.close()


DbSession = Annotated[Session, Depends(get_db)]


async def get_read_db(request: Request, db: DbSession) -> AsyncIterator[Session]:
    """A session on the read replica (``DATABASE_READ_URL``) for searches, asks and lists:
    what may lag the caller's own writes by the replication delay. Access checks and anything
    that must see the caller's writes use ``DbSession``. Without a replica this is the
    request's ``DbSession`` itself (one pooled connection per request, as before)."""
    if request.app.state.read_engine is None:
        yield db
        return
    session: Session = request.app.state.read_session_factory()
    try:
        yield session
    finally:
        await close_session(session)


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


ReadDb = Annotated[Session, Depends(get_read_db)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


def enforce_rate_limit(request: Request, key: str, limit: int) -> None:
    """Count one request against ``key``; 429 with ``Retry-After`` past ``limit`` a minute."""
    limiter: RateLimiter = request.app.state.rate_limiter
    _refuse_if_over(limiter.hit(key, limit))


def _refuse_if_over(verdict: Verdict) -> None:
    if not verdict.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many requests; retry later",
            headers={"Retry-After": str(verdict.retry_after)},
        )


async def limit_by_ip(request: Request, settings: AppSettings) -> None:
    """Every ``/api/v1`` request counts against its client address. A read-only request whose
    token was authenticated within ``AUTH_CACHE_SECONDS`` (the app's
    ``sessions.RecentCallers``) also counts against its user's limit, in the same Redis call,
    which also reads ``AUTH_EPOCH_KEY``: the cached user is used only if no revocation or
    change to a user was announced since it was loaded (``request.state.recent_caller``)."""
    ip = request.client.host if request.client else "unknown"
    hits = [(f"ip:{ip}", settings.rate_limit_per_minute)]
    state = request.state
    recent = None
    if settings.auth_cache_seconds and request.method in api_keys.SAFE_METHODS:
        # The header read as ``bearer`` reads it; not a dependency on it, which would mark
        # every route, public ones too, as needing a token in the OpenAPI document.
        credentials = await bearer(request)
        callers: sessions.RecentCallers = request.app.state.recent_callers
        recent = callers.get(credentials.credentials) if credentials else None
        if recent is not None:
            hits.append((f"user:{recent.user.id}", settings.rate_limit_per_minute))
            state.counted_user = recent.user.id
    limiter: RateLimiter = request.app.state.rate_limiter
    verdict = await limiter.ahit_all(hits, epoch_key=sessions.AUTH_EPOCH_KEY)
    _refuse_if_over(verdict)
    state.auth_epoch = verdict.epoch
    if (
        recent is not None
        and callers.current(recent, verdict.epoch)
        and recent.claims.version == recent.user.token_version
        and recent.user.is_active
    ):
        state.recent_caller = recent.user
        state.token_claims, state.api_key = recent.claims, None


def _unauthorized(detail: str = "Not authenticated") -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def authenticate(
    request: Request,
    db: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
) -> User:
    """The user named by a valid bearer token or API key; 401 for a missing, bad, expired or
    revoked one, or an inactive user; 403 for a write with a read-only key. Blocking (it may
    query the database): for a worker thread. Counts no per-user request (see
    ``get_current_user``) except an API key's own limit."""
    if credentials is None:
        raise _unauthorized()
    request.state.token_claims = request.state.api_key = None
    if api_keys.is_api_key(credentials.credentials):
        found = api_keys.authenticate(db, credentials.credentials)
        if found is None:
            raise _unauthorized("Invalid, expired or revoked API key")
        key, user = found
        if key.read_only and request.method not in api_keys.SAFE_METHODS:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "This API key is read-only")
        request.state.api_key = key
        enforce_rate_limit(request, f"apikey:{key.id}", settings.api_key_rate_limit_per_minute)
        return user
    claims = _claims(settings, credentials.credentials)
    recent: sessions.RecentCallers = request.app.state.recent_callers
    generation = recent.generation
    # The user and the token's revocation in one query (sessions.active_user).
    found_user = (
        sessions.active_user(db, claims.subject, claims.jti) if is_id(claims.subject) else None
    )
    if found_user is None or claims.version != found_user.token_version:
        raise _unauthorized("Invalid or expired token")
    if settings.auth_cache_seconds and request.method in api_keys.SAFE_METHODS:
        epoch = getattr(request.state, "auth_epoch", None)  # read before the user was loaded
        recent.put(
            credentials.credentials,
            claims,
            found_user,
            settings.auth_cache_seconds,
            generation,
            epoch,
        )
    request.state.token_claims = claims
    return found_user


def _claims(settings: Settings, token: str) -> TokenClaims:
    try:
        return decode_claims(settings, token)
    except InvalidToken:
        raise _unauthorized("Invalid or expired token") from None


def authenticate_and_limit(
    request: Request,
    db: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
) -> User:
    """``authenticate`` and the per-user request limit, all blocking (the web pages' way)."""
    user = authenticate(request, db, settings, credentials)
    enforce_rate_limit(request, f"user:{user.id}", settings.rate_limit_per_minute)
    return user


async def get_current_user(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The caller (``authenticate``), counted against the per-user limit.

    A recent caller (found by ``limit_by_ip``) is used on the event loop; anyone else is
    authenticated on a worker thread, then counted unless ``limit_by_ip`` already did
    (waiting for Redis on the loop).
    """
    state = request.state
    user: User | None = getattr(state, "recent_caller", None)
    if user is None:
        user = await run_in_threadpool(authenticate, request, db, settings, credentials)
    if getattr(state, "counted_user", None) != user.id:
        limiter: RateLimiter = request.app.state.rate_limiter
        _refuse_if_over(await limiter.ahit(f"user:{user.id}", settings.rate_limit_per_minute))
    return user


def get_session_user(request: Request, user: CurrentUser) -> User:
    """The caller signed in with a session (not an API key): what managing credentials needs,
    so a leaked key cannot mint more keys or change the password."""
    if request.state.token_claims is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "Requires a signed-in session, not an API key"
        )
    return user


SessionUser = Annotated[User, Depends(get_session_user)]


def is_admin(settings: Settings, user: User) -> bool:
    """Instance admins: flagged in the database (OIDC admin groups) or listed in ADMIN_EMAILS
    with a verified email (anyone may register an address that is listed but unused)."""
    return user.is_admin or (
        user.email_verified_at is not None
        and user.email.lower() in {e.lower() for e in settings.admin_emails}
    )


def get_admin_user(user: SessionUser, settings: AppSettings) -> User:
    if not is_admin(settings, user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Requires an instance admin")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


CurrentUser = Annotated[User, Depends(get_current_user)]


def is_id(value: str | None) -> bool:
    """Our ids are 32 hex characters; anything else cannot name a row (and is never queried)."""
    return bool(value and _ID.match(value))


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


def require_role(db: Session, workspace_id: str, user: User, needed: Role) -> Membership:
    """The caller's membership of ``workspace_id``: 404 if none, 403 if below ``needed``."""
    membership = (
        db.scalar(
            select(Membership).where(
                Membership.workspace_id == workspace_id, Membership.user_id == user.id
            )
        )
        if is_id(workspace_id)
        else None
    )
    if membership is None:
        raise not_found("Workspace")
    if not Role(membership.role).allows(needed):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Requires the {needed.value} role")
    return membership


def _in_my_workspace(db: Session, model: type[M], object_id: str, user: User, needed: Role) -> M:
    """The notebook, document, conversation or note ``object_id`` if the caller holds
    ``needed`` in its workspace.

    Outside the caller's workspaces it is 404 under the object's own name, so ids cannot be
    probed; inside, a role below ``needed`` is 403.
    """
    found = db.get(model, object_id) if is_id(object_id) else None
    if found is None:
        raise not_found(model.__name__)
    try:
        require_role(db, found.workspace_id, user, needed)
    except HTTPException as exc:
        raise not_found(model.__name__) if exc.status_code == 404 else exc from None
    return found


def get_readable_notebook(notebook_id: str, db: DbSession, user: CurrentUser) -> Notebook:
    return _in_my_workspace(db, Notebook, notebook_id, user, Role.viewer)


def get_writable_notebook(notebook_id: str, db: DbSession, user: CurrentUser) -> Notebook:
    return _in_my_workspace(db, Notebook, notebook_id, user, Role.editor)


ReadableNotebook = Annotated[Notebook, Depends(get_readable_notebook)]
WritableNotebook = Annotated[Notebook, Depends(get_writable_notebook)]


def get_readable_document(document_id: str, db: DbSession, user: CurrentUser) -> Document:
    return _in_my_workspace(db, Document, document_id, user, Role.viewer)


def get_writable_document(document_id: str, db: DbSession, user: CurrentUser) -> Document:
    return _in_my_workspace(db, Document, document_id, user, Role.editor)


ReadableDocument = Annotated[Document, Depends(get_readable_document)]
WritableDocument = Annotated[Document, Depends(get_writable_document)]


def get_readable_conversation(
    conversation_id: str, db: DbSession, user: CurrentUser
) -> Conversation:
    return _in_my_workspace(db, Conversation, conversation_id, user, Role.viewer)


def get_own_conversation(conversation_id: str, db: DbSession, user: CurrentUser) -> Conversation:
    """A conversation the caller may change: one they started, or any if they are an editor."""
    found = _in_my_workspace(db, Conversation, conversation_id, user, Role.viewer)
    if found.created_by != user.id:
        require_role(db, found.workspace_id, user, Role.editor)
    return found


ReadableConversation = Annotated[Conversation, Depends(get_readable_conversation)]
OwnConversation = Annotated[Conversation, Depends(get_own_conversation)]


def get_readable_note(note_id: str, db: DbSession, user: CurrentUser) -> Note:
    return _in_my_workspace(db, Note, note_id, user, Role.viewer)


def get_writable_note(note_id: str, db: DbSession, user: CurrentUser) -> Note:
    return _in_my_workspace(db, Note, note_id, user, Role.editor)


ReadableNote = Annotated[Note, Depends(get_readable_note)]
WritableNote = Annotated[Note, Depends(get_writable_note)]


def get_readable_charter(charter_id: str, db: DbSession, user: CurrentUser) -> Charter:
    return _in_my_workspace(db, Charter, charter_id, user, Role.viewer)


def get_writable_charter(charter_id: str, db: DbSession, user: CurrentUser) -> Charter:
    return _in_my_workspace(db, Charter, charter_id, user, Role.editor)


ReadableCharter = Annotated[Charter, Depends(get_readable_charter)]
WritableCharter = Annotated[Charter, Depends(get_writable_charter)]


class Pagination(BaseModel):
    limit: int
    offset: int


async def get_pagination(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


PageParams = Annotated[Pagination, Depends(get_pagination)]


def paginate(
    db: Session, stmt: Select[tuple[T]], page: Pagination, out: Callable[[T], Out]
) -> Page[Out]:
    """One page of ``stmt`` (already ordered), each row turned into its response by ``out``,
    with the total count of its rows: the ``{items,total,limit,offset}`` of every list."""
    rows, total = _page_rows(db, stmt, page)
    return Page(
        items=[out(row[0]) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


def paginate_rows(
    conn: Session | Connection, stmt: Select[Any], page: Pagination, out: type[Out]
) -> Page[Out]:
    """``paginate`` for a Core ``stmt`` of plain columns named like ``out``'s fields: rows
    validated into ``out`` without building ORM objects."""
    rows, total = _page_rows(conn, stmt, page)
    items = [out.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def _page_rows(
    db: Session | Connection, stmt: Select[Any], page: Pagination
) -> tuple[list[Any], int]:
    """The page's rows and the total. The total rides along each row (``count(*) OVER ()``):
    one round trip, not two. Only a page past the end, which has no rows to carry it, costs a
    separate count."""
    rows = db.execute(
        stmt.add_columns(func.count().over().label("_total")).limit(page.limit).offset(page.offset)
    ).all()
    if rows:
        return list(rows), rows[0][-1]
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return [], total


@contextmanager
def reading(request: Request, db: Session) -> Iterator[Session | Connection]:
    """Where a read-only request reads its rows from, on a worker thread: the replica when
    ``DATABASE_READ_URL`` is set; else ``db`` if its transaction is open already (the caller
    was loaded through it: no second connection); else a connection in autocommit, which
    costs no ``BEGIN`` and no ``ROLLBACK`` round trip (PostgreSQL's default isolation gives a
    statement the same snapshot either way)."""
    state = request.app.state
    if state.read_engine is None and db.in_transaction():
        yield db
        return
    engine: Engine = state.read_engine or state.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` serialised by pydantic in one step. A route returning it declares ``model``'s
    class as its ``response_model`` (the OpenAPI schema); FastAPI then does not validate and
    encode the value a second time."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")
