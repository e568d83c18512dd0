"""One document: metadata, download, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from charterflow.api.deps import CurrentUser, DbSession, ReadableDocument, WritableDocument
from charterflow.api.errors import AUTHED, errors
from charterflow.models import Document, DocumentStatus
from charterflow.schemas.notebooks import DocumentOut, DocumentTextOut, PageStartOut
from charterflow.services import audit, document_text
from charterflow.services.filetypes import ALLOWED
from charterflow.storage import ObjectNotFound

router = APIRouter(prefix="/documents", tags=["documents"])


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    responses=errors(*AUTHED),
    summary="Metadata and ingestion status (`pending`, `processing`, `ready`, `failed`)",
)
def get_document(document: ReadableDocument) -> Document:
    return document


@router.get(
    "/{document_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The stored bytes, as an attachment.",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ALLOWED},
        },
        **errors(*AUTHED, 503),
    },
    summary="Download the original file",
)
def download_document(document: ReadableDocument, request: Request) -> StreamingResponse:
    chunks = request.app.state.storage.iter_bytes(document.storage_key)
    try:
        first = next(chunks, b"")  # surfaces a storage error before the 200 is sent
    except ObjectNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Document content not found") from None

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    media_type = document.media_type
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    disposition = f"attachment; filename*=UTF-8''{quote(document.filename, safe='')}"
    return StreamingResponse(
        body(),
        media_type=media_type,
        headers={
            "Content-Disposition": disposition,
            "Content-Length": str(document.size_bytes),
        },
    )


TEXT_WINDOW = 20_000
TEXT_WINDOW_MAX = 100_000
_Offset = Annotated[int, Query(ge=0, le=10**9)]


@router.get(
    "/{document_id}/text",
    response_model=DocumentTextOut,
    responses=errors(*AUTHED, 400, 409),
    summary="The extracted text (a window of it), or the paragraph around `start`..`end`",
)
def get_document_text(
    document: ReadableDocument,
    db: DbSession,
    offset: _Offset = 0,
    limit: Annotated[int, Query(ge=1, le=TEXT_WINDOW_MAX)] = TEXT_WINDOW,
    start: _Offset | None = None,
    end: _Offset | None = None,
) -> DocumentTextOut:
    """Without ``start``/``end``: up to ``limit`` characters from ``offset`` (``next_offset``
    continues). With both: the blank-line-delimited block(s) holding that span, as a
    citation's paragraph; ``offset`` then says where they begin."""
    if document.status != DocumentStatus.ready.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"The document's text is not available ({document.status})"
        )
    if (start is None) != (end is None):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Give both start and end, or neither")
    length = document_text.text_length(db, document.id)
    if start is not None and end is not None:
        if start > end or end > length:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"start and end must satisfy 0 <= start <= end <= {length} (the text's length)",
            )
        found = document_text.passage(db, document.id, start, end, length)
        next_offset = None
    else:
        if offset > length:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"offset is past the end of the text ({length} characters)",
            )
        found = document_text.window(db, document.id, offset, limit, length)
        following = found.offset + len(found.text)
        next_offset = following if following < length else None
    return DocumentTextOut(
        document_id=document.id,
        length=length,
        offset=found.offset,
        text=found.text,
        clipped_start=found.clipped_start,
        clipped_end=found.clipped_end,
        next_offset=next_offset,
        pages=[
            PageStartOut(page=page, start=at)
            for page, at in document_text.page_starts(db, document.id)
        ],
    )


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403, 503),
    summary="Delete the document and its stored file (editors)",
)
def delete_document(
    document: WritableDocument, request: Request, db: DbSession, user: CurrentUser
) -> Response:
    db.delete(document)
    audit.record(
        db,
        request,
        "document.delete",
        target_type="document",
        target_id=document.id,
        workspace_id=document.workspace_id,
        actor_id=user.id,
        notebook_id=document.notebook_id,
    )
    db.flush()
    # The object goes first while the row's deletion is still uncommitted: if storage fails
    # the transaction rolls back (503) and row and object both remain.
    request.app.state.storage.delete(document.storage_key)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
