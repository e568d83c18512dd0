"""Notebooks, and the documents uploaded into them."""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import (
    APIRouter,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from charterflow.api.deps import (
    AppSettings,
    CurrentUser,
    DbSession,
    PageParams,
    Pagination,
    ReadableNotebook,
    ReadDb,
    WritableNotebook,
    json_response,
    paginate,
    paginate_rows,
    reading,
    require_role,
)
from charterflow.api.errors import AUTHED, errors
from charterflow.ingest.webpage import URL_MEDIA_TYPE
from charterflow.logging import get_logger
from charterflow.models import Document, Membership, Notebook, Role, User, Workspace
from charterflow.schemas.common import Page, Title
from charterflow.schemas.notebooks import (
    DocumentOut,
    NotebookIn,
    NotebookOut,
    NotebookUpdate,
    TextSourceIn,
    UrlSourceIn,
)
from charterflow.services import audit
from charterflow.services.cleanup import delete_with_documents
from charterflow.services.filetypes import TXT, UnsupportedType
from charterflow.services.uploads import QuotaExceeded, UploadTooLarge, store_document

router = APIRouter(prefix="/notebooks", tags=["notebooks"])
log = get_logger("charterflow.api")


@router.get(
    "",
    response_model=Page[NotebookOut],
    responses=errors(*AUTHED),
    summary="Notebooks in my workspaces (optionally one workspace)",
)
async def list_notebooks(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    page: PageParams,
    workspace_id: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    def read() -> Page[NotebookOut]:  # all the blocking work in one worker-thread hand-off
        try:
            with reading(request, db) as rows:
                return notebooks_page(db, rows, user, page, workspace_id)
        finally:
            db.close()  # done with it: closed here, not on a hand-off of its own (get_db)

    return json_response(await run_in_threadpool(read))


def notebooks_page(
    db: Session,
    read: Session | Connection,
    user: User,
    page: Pagination,
    workspace_id: str | None = None,
) -> Page[NotebookOut]:
    """The caller's notebooks (in one workspace if given: 404 unless they belong to it, checked
    on ``db``), read from ``read`` as plain rows. Blocking."""
    if workspace_id is not None:
        require_role(db, workspace_id, user, Role.viewer)
        where = Notebook.workspace_id == workspace_id
    else:
        mine = select(Membership.workspace_id).where(Membership.user_id == user.id)
        where = Notebook.workspace_id.in_(mine)
    stmt = select(*NOTEBOOK_COLUMNS).where(where).order_by(Notebook.created_at, Notebook.id)
    return paginate_rows(read, stmt, page, NotebookOut)


#: The columns of ``NotebookOut``, read as plain rows by the list.
NOTEBOOK_COLUMNS = tuple(getattr(Notebook, name) for name in NotebookOut.model_fields)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NotebookOut,
    responses=errors(*AUTHED, 403),
    summary="Create a notebook (in the personal workspace unless `workspace_id` is given)",
)
def create_notebook(
    body: NotebookIn, request: Request, db: DbSession, user: CurrentUser
) -> Notebook:
    workspace_id = body.workspace_id
    if workspace_id is None:
        workspace_id = db.scalar(
            select(Workspace.id)
            .join(Membership)
            .where(
                Workspace.personal, Workspace.created_by == user.id, Membership.user_id == user.id
            )
        )
        if workspace_id is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, "No personal workspace; give workspace_id"
            )
    require_role(db, workspace_id, user, Role.editor)
    notebook = Notebook(
        workspace_id=workspace_id,
        title=body.title,
        description=body.description,
        created_by=user.id,
    )
    db.add(notebook)
    db.flush()
    audit.record(
        db,
        request,
        "notebook.create",
        target_type="notebook",
        target_id=notebook.id,
        workspace_id=workspace_id,
        actor_id=user.id,
    )
    db.commit()
    return notebook


@router.get("/{notebook_id}", response_model=NotebookOut, responses=errors(*AUTHED), summary="One")
def get_notebook(notebook: ReadableNotebook) -> Notebook:
    return notebook


@router.patch(
    "/{notebook_id}",
    response_model=NotebookOut,
    responses=errors(*AUTHED, 403),
    summary="Change title or description (editors)",
)
def update_notebook(
    notebook: WritableNotebook,
    body: NotebookUpdate,
    request: Request,
    db: DbSession,
    user: CurrentUser,
) -> Notebook:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(notebook, field, value)
    audit.record(
        db,
        request,
        "notebook.update",
        target_type="notebook",
        target_id=notebook.id,
        workspace_id=notebook.workspace_id,
        actor_id=user.id,
        fields=sorted(changes),
    )
    db.commit()
    return notebook


@router.delete(
    "/{notebook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403),
    summary="Delete with its documents (editors)",
)
def delete_notebook(
    notebook: WritableNotebook, request: Request, db: DbSession, user: CurrentUser
) -> Response:
    delete_with_documents(db, request, notebook, actor_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{notebook_id}/documents",
    response_model=Page[DocumentOut],
    responses=errors(*AUTHED),
    summary="Documents of a notebook, with their ingestion status",
)
def list_documents(notebook: ReadableNotebook, db: ReadDb, page: PageParams) -> Page[DocumentOut]:
    stmt = (
        select(Document)
        .where(Document.notebook_id == notebook.id)
        .order_by(Document.created_at, Document.id)
    )
    return paginate(db, stmt, page, DocumentOut.model_validate)


@router.post(
    "/{notebook_id}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentOut,
    responses=errors(*AUTHED, 400, 403, 409, 413, 415, 503),
    summary="Upload a document (PDF, DOCX, PPTX, XLSX, EPUB, TXT, MD, HTML, CSV); "
    "ingested in the background",
)
def upload_document(
    notebook: WritableNotebook,
    file: Annotated[UploadFile, File(description="The document; its type is read from its bytes.")],
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    title: Annotated[Title | None, Form()] = None,
) -> Document:
    return _accept(
        request,
        db,
        notebook,
        user,
        settings,
        stream=file.file,
        filename=file.filename,
        title=title,
    )


@router.post(
    "/{notebook_id}/documents/text",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentOut,
    responses=errors(*AUTHED, 403, 409, 413, 503),
    summary="Add pasted text as a source, with a title; ingested like uploads",
)
def add_text_source(
    notebook: WritableNotebook,
    body: TextSourceIn,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Document:
    return _accept(
        request,
        db,
        notebook,
        user,
        settings,
        stream=io.BytesIO(body.text.encode("utf-8")),
        filename=f"{body.title}.txt",
        title=body.title,
        media_type=TXT,
    )


@router.post(
    "/{notebook_id}/documents/url",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentOut,
    responses=errors(*AUTHED, 403, 409, 503),
    summary="Add a web page by URL; the worker fetches it (private addresses are refused)",
)
def add_url_source(
    notebook: WritableNotebook,
    body: UrlSourceIn,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Document:
    return _accept(
        request,
        db,
        notebook,
        user,
        settings,
        stream=io.BytesIO(body.url.encode("utf-8")),
        filename=urlsplit(body.url).netloc or "page",
        title=body.title or body.url[:300],
        media_type=URL_MEDIA_TYPE,
        source_url=body.url,
    )


def _accept(
    request: Request,
    db: DbSession,
    notebook: Notebook,
    user: CurrentUser,
    settings: AppSettings,
    **source: Any,
) -> Document:
    """Store a source (413/415 as for uploads) and queue its ingestion; 202 either way."""
    try:
        doc = store_document(
            db,
            request.app.state.storage,
            request,
            notebook=notebook,
            user=user,
            limit=settings.max_upload_bytes,
            **source,
        )
    except UploadTooLarge:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"The file is larger than {settings.max_upload_bytes} bytes",
        ) from None
    except QuotaExceeded as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except UnsupportedType as exc:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Unsupported file ({exc}); accepted: PDF, DOCX, PPTX, XLSX, EPUB, TXT, Markdown, "
            "HTML, CSV",
        ) from None
    try:
        request.app.state.jobs.enqueue_ingest(doc.id)
    except Exception as exc:  # the row is safe and stays pending: the worker's sweep queues
        # it again after INGEST_PENDING_REQUEUE_SECONDS; /health/ready shows Redis down.
        log.error("enqueue failed", document_id=doc.id, error=f"{type(exc).__name__}: {exc}")
    return doc
