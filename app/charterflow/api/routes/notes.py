"""Notes in a notebook: saved answers (with their citations) or free text; Markdown export.

Notes are notebook content: members read them, editors write them (403 for viewers).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select

from charterflow.api.deps import (
    AppSettings,
    CurrentUser,
    DbSession,
    PageParams,
    ReadableNote,
    ReadableNotebook,
    ReadDb,
    WritableNote,
    WritableNotebook,
    is_id,
    paginate,
)
from charterflow.api.errors import AUTHED, errors
from charterflow.models import Conversation, Message, Note
from charterflow.schemas.common import Page
from charterflow.schemas.notes import NoteIn, NoteOut, NoteUpdate
from charterflow.services import audit, citation_check, quota
from charterflow.services.markdown import download_name, with_references

router = APIRouter(tags=["notes"])


def _audit(db: DbSession, request: Request, action: str, note: Note, user_id: str) -> None:
    audit.record(
        db,
        request,
        f"note.{action}",
        target_type="note",
        target_id=note.id,
        workspace_id=note.workspace_id,
        actor_id=user_id,
    )


@router.get(
    "/notebooks/{notebook_id}/notes",
    response_model=Page[NoteOut],
    responses=errors(*AUTHED),
    summary="Notes of a notebook",
)
def list_notes(notebook: ReadableNotebook, db: ReadDb, page: PageParams) -> Page[NoteOut]:
    stmt = select(Note).where(Note.notebook_id == notebook.id).order_by(Note.created_at, Note.id)
    return paginate(db, stmt, page, NoteOut.model_validate)


@router.post(
    "/notebooks/{notebook_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=NoteOut,
    responses=errors(*AUTHED, 400, 403, 409),
    summary="Write a note, or save a conversation turn's answer as one (editors)",
)
def create_note(
    notebook: WritableNotebook,
    body: NoteIn,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Note:
    citations = citation_check.resolve(db, notebook.id, [c.model_dump() for c in body.citations])
    title, text = body.title, body.body
    if body.from_message_id is not None:
        message = (
            db.scalar(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.id == body.from_message_id, Conversation.notebook_id == notebook.id)
            )
            if is_id(body.from_message_id)
            else None
        )
        if message is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Message not found in this notebook")
        title = title or message.question[:300]
        text = message.answer if text is None else text
        citations = citations or list(message.citations)
    note = Note(
        workspace_id=notebook.workspace_id,
        notebook_id=notebook.id,
        title=title or "Note",
        body=text or "",
        citations=citations,
        from_message_id=body.from_message_id,
        created_by=user.id,
    )
    db.add(note)
    db.flush()
    quota.refuse_if_over(db, notebook.workspace_id, settings)
    _audit(db, request, "create", note, user.id)
    db.commit()
    return note


@router.get("/notes/{note_id}", response_model=NoteOut, responses=errors(*AUTHED), summary="One")
def get_note(note: ReadableNote) -> Note:
    return note


@router.patch(
    "/notes/{note_id}",
    response_model=NoteOut,
    responses=errors(*AUTHED, 400, 403, 409),
    summary="Edit title, body or citations (editors)",
)
def update_note(
    note: WritableNote,
    body: NoteUpdate,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Note:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if body.citations is not None:  # whole citations, optional fields included
        given = [c.model_dump() for c in body.citations]
        changes["citations"] = citation_check.resolve(db, note.notebook_id, given)
    for field, value in changes.items():
        setattr(note, field, value)
    quota.refuse_if_over(db, note.workspace_id, settings)
    audit.record(
        db,
        request,
        "note.update",
        target_type="note",
        target_id=note.id,
        workspace_id=note.workspace_id,
        actor_id=user.id,
        fields=sorted(changes),
    )
    db.commit()
    return note


@router.delete(
    "/notes/{note_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403),
    summary="Delete (editors)",
)
def delete_note(note: WritableNote, request: Request, db: DbSession, user: CurrentUser) -> Response:
    db.delete(note)
    _audit(db, request, "delete", note, user.id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/notes/{note_id}/export",
    response_class=Response,
    responses={
        200: {"description": "The note as Markdown", "content": {"text/markdown": {}}},
        **errors(*AUTHED),
    },
    summary="The note as Markdown with numbered references",
)
def export_note(note: ReadableNote) -> Response:
    return Response(
        with_references(note.title, note.body, note.citations),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{download_name(note.title)}"'},
    )
