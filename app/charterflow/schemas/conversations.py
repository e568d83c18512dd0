"""Request and response bodies of conversations and their turns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from charterflow.models import TurnStatus
from charterflow.schemas.common import ORMModel, Title, storable
from charterflow.schemas.search import MODEL, QUOTED, CitationOut, DocumentIds


class ConversationIn(BaseModel):
    title: Title | None = Field(
        None, description="Defaults to the first question asked in it (cut to 80 characters)."
    )


class ConversationUpdate(BaseModel):
    title: Title


class ConversationOut(ORMModel):
    id: str
    workspace_id: str
    notebook_id: str
    title: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class MessageIn(BaseModel):
    question: Annotated[str, AfterValidator(storable)] = Field(min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=20, description="Passages to answer from, at most.")
    document_ids: DocumentIds = None


class MessageOut(ORMModel):
    id: str
    conversation_id: str
    question: str
    retrieval_query: str = Field(
        description="What retrieval searched for: a follow-up carries the earlier topic's terms."
    )
    answer: str
    mode: Literal["extractive", "llm"]
    quoted: bool = Field(description=QUOTED)
    model: str | None = Field(description=MODEL)
    status: TurnStatus = Field(
        description="`complete`, or `interrupted` / `failed` when a streamed answer was cut "
        "short (the reason is in `warning`)."
    )
    warning: str | None
    citations: list[CitationOut]
    timings: dict[str, float] = Field(
        description="Milliseconds: `total_ms`; streamed turns also `first_byte_ms`."
    )
    created_by: str | None
    created_at: datetime
