"""One document: metadata, download, delete."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse

from charterflow.api.deps import CurrentUser, DbSession, ReadableDocument, WritableDocument
from charterflow.api.errors import AUTHED, errors
from charterflow.models import Document
from charterflow.schemas.notebooks import DocumentOut
from charterflow.services import audit
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
