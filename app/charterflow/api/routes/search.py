"""Search a notebook's documents and ask questions answered from them, with citations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from sqlalchemy import select
from sqlalchemy.orm import Session

from charterflow.api.deps import AppSettings, ReadableNotebook, ReadDb
from charterflow.api.errors import AUTHED, errors
from charterflow.appmetrics import ASK
from charterflow.models import Document
from charterflow.retrieval.answer import answer
from charterflow.retrieval.embedders import get_embedder
from charterflow.retrieval.search import search
from charterflow.schemas.common import storable
from charterflow.schemas.search import AskIn, AskOut, SearchHitOut, SearchOut

router = APIRouter(prefix="/notebooks", tags=["search"])


def only_these(db: Session, notebook_id: str, document_ids: list[str] | None) -> list[str] | None:
    """The documents an ask is limited to ("ask only these"), each checked to be the
    notebook's: one that is not is a 422 naming ``document_ids`` (and the ids)."""
    if document_ids is None:
        return None
    wanted = list(dict.fromkeys(document_ids))
    found = set(
        db.scalars(
            select(Document.id).where(Document.notebook_id == notebook_id, Document.id.in_(wanted))
        )
    )
    unknown = [d for d in wanted if d not in found]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "document_ids"),
                    "msg": "Not documents of this notebook: " + ", ".join(unknown[:10]),
                    "type": "value_error",
                    "input": unknown[:10],
                }
            ]
        )
    return wanted


@router.get(
    "/{notebook_id}/search",
    response_model=SearchOut,
    responses=errors(*AUTHED),
    summary="Hybrid (full-text + vector) search over the notebook's documents",
)
def search_notebook(
    notebook: ReadableNotebook,
    db: ReadDb,
    settings: AppSettings,
    q: Annotated[
        str,
        Query(min_length=1, max_length=1000, description="What to look for."),
        AfterValidator(storable),  # no NUL (PostgreSQL cannot take it) or lone surrogates
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchOut:
    hits = search(db, get_embedder(settings), notebook.id, q, limit)
    return SearchOut(
        query=q, items=[SearchHitOut.model_validate(h, from_attributes=True) for h in hits]
    )


@router.post(
    "/{notebook_id}/ask",
    response_model=AskOut,
    responses=errors(*AUTHED),
    summary="Answer a question from the notebook's documents (or the ones given), with citations",
)
def ask_notebook(
    notebook: ReadableNotebook, body: AskIn, db: ReadDb, settings: AppSettings, request: Request
) -> AskOut:
    documents = only_these(db, notebook.id, body.document_ids)
    embedder = get_embedder(settings)
    result = answer(
        db, settings, embedder, notebook.id, body.question, body.top_k, documents=documents
    )
    # A one-shot answer stores nothing (no audit event to count on commit): counted here.
    request.app.state.metrics.business.count(ASK, {"mode": result.mode, "status": "complete"})
    return AskOut.model_validate(result, from_attributes=True)
