"""Conversations in a notebook and their turns.

Who may do what: every member of the workspace reads a notebook's conversations; viewers may
start conversations and ask in the ones they started (asking reads the sources, it changes
none of them); renaming, deleting and asking in someone else's conversation needs the editor
role (403 otherwise). Outside the caller's workspaces everything is 404.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from charterflow.api.deps import (
    AppSettings,
    CurrentUser,
    DbSession,
    OwnConversation,
    PageParams,
    ReadableConversation,
    ReadableNotebook,
    ReadDb,
    paginate,
)
from charterflow.api.errors import AUTHED, errors
from charterflow.api.routes.search import only_these
from charterflow.models import Conversation, Message
from charterflow.schemas.common import Page
from charterflow.schemas.conversations import (
    ConversationIn,
    ConversationOut,
    ConversationUpdate,
    MessageIn,
    MessageOut,
)
from charterflow.services import audit, conversations
from charterflow.services.answer_stream import stream_turn

router = APIRouter(tags=["conversations"])


@router.get(
    "/notebooks/{notebook_id}/conversations",
    response_model=Page[ConversationOut],
    responses=errors(*AUTHED),
    summary="Conversations of a notebook, most recently active last",
)
def list_conversations(
    notebook: ReadableNotebook, db: ReadDb, page: PageParams
) -> Page[ConversationOut]:
    stmt = (
        select(Conversation)
        .where(Conversation.notebook_id == notebook.id)
        .order_by(Conversation.created_at, Conversation.id)
    )
    return paginate(db, stmt, page, ConversationOut.model_validate)


@router.post(
    "/notebooks/{notebook_id}/conversations",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationOut,
    responses=errors(*AUTHED),
    summary="Start a conversation (any member, viewers included)",
)
def create_conversation(
    notebook: ReadableNotebook,
    body: ConversationIn,
    request: Request,
    db: DbSession,
    user: CurrentUser,
) -> Conversation:
    conversation = Conversation(
        workspace_id=notebook.workspace_id,
        notebook_id=notebook.id,
        title=body.title or conversations.DEFAULT_TITLE,
        created_by=user.id,
    )
    db.add(conversation)
    db.flush()
    audit.record(
        db,
        request,
        "conversation.create",
        target_type="conversation",
        target_id=conversation.id,
        workspace_id=conversation.workspace_id,
        actor_id=user.id,
    )
    db.commit()
    return conversation


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    responses=errors(*AUTHED),
    summary="One conversation",
)
def get_conversation(conversation: ReadableConversation) -> Conversation:
    return conversation


@router.patch(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    responses=errors(*AUTHED, 403),
    summary="Rename (its starter, or an editor)",
)
def rename_conversation(
    conversation: OwnConversation,
    body: ConversationUpdate,
    request: Request,
    db: DbSession,
    user: CurrentUser,
) -> Conversation:
    conversation.title = body.title
    audit.record(
        db,
        request,
        "conversation.update",
        target_type="conversation",
        target_id=conversation.id,
        workspace_id=conversation.workspace_id,
        actor_id=user.id,
        fields=["title"],
    )
    db.commit()
    return conversation


@router.delete(
    "/conversations/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(*AUTHED, 403),
    summary="Delete with its turns (its starter, or an editor)",
)
def delete_conversation(
    conversation: OwnConversation, request: Request, db: DbSession, user: CurrentUser
) -> Response:
    db.delete(conversation)
    audit.record(
        db,
        request,
        "conversation.delete",
        target_type="conversation",
        target_id=conversation.id,
        workspace_id=conversation.workspace_id,
        actor_id=user.id,
    )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=Page[MessageOut],
    responses=errors(*AUTHED),
    summary="Turns of a conversation, oldest first",
)
def list_messages(
    conversation: ReadableConversation, db: DbSession, page: PageParams
) -> Page[MessageOut]:
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.created_at, Message.id)
    )
    return paginate(db, stmt, page, MessageOut.model_validate)


_STREAM = {
    "description": "The turn; with `Accept: text/event-stream`, Server-Sent Events `citations`, "
    "`delta` (repeated), then `done` (the stored turn) or `error` (`{detail, turn}`).",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    responses={200: _STREAM, **errors(*AUTHED, 403)},
    summary="Ask the next question; a follow-up is answered in the conversation's context",
)
async def ask(
    conversation: OwnConversation,
    body: MessageIn,
    request: Request,
    db: DbSession,
    user: CurrentUser,
    settings: AppSettings,
) -> Message | StreamingResponse:
    documents = only_these(db, conversation.notebook_id, body.document_ids)
    if "text/event-stream" in request.headers.get("accept", ""):
        db.close()  # the stream uses sessions of its own, for as long as it lasts
        events = request.app.state.stream_slots.hold(
            user.id,
            stream_turn(
                request, settings, conversation.id, body.question, body.top_k, user.id, documents
            ),
        )
        if events is None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"At most {settings.max_streams_per_user} answers stream at once; "
                "wait for one to finish",
                headers={"Retry-After": "5"},
            )
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await run_in_threadpool(
        conversations.ask,
        db,
        request,
        settings,
        conversation,
        body.question,
        body.top_k,
        user.id,
        documents,
    )
