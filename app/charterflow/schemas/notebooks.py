"""Notebooks and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from charterflow.models import Document, DocumentStage, DocumentStatus, stage_of
from charterflow.schemas.common import Description, ORMModel, Title


class NotebookIn(BaseModel):
    title: Title
    description: Description = ""
    workspace_id: str | None = Field(
        None, max_length=32, description="Defaults to the caller's personal workspace."
    )


class NotebookUpdate(BaseModel):
    title: Title | None = None
    description: Description | None = None


class NotebookOut(ORMModel):
    id: str
    workspace_id: str
    title: str
    description: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class Progress(BaseModel):
    done: int = Field(ge=0)
    total: int = Field(ge=0)


class DocumentOut(ORMModel):
    id: str
    workspace_id: str
    notebook_id: str
    title: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    status: DocumentStatus
    error: str | None
    chunk_count: int
    source_url: str | None = Field(description="The page's address, for a URL source.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    stage: DocumentStage = Field(
        description="What ingestion is doing now: queued, reading, chunking, embedding, then "
        "ready or failed (the reason in `error`). `status` is the lifecycle."
    )
    progress: Progress | None = Field(
        description="Pages read while reading a paged document, passages embedded while "
        "embedding; null when there is nothing to count."
    )

    @model_validator(mode="before")
    @classmethod
    def _stage(cls, data: Any) -> Any:
        """A ``Document`` row's stage and progress, as ``models.stage_of`` reads them."""
        if not isinstance(data, Document):
            return data
        stage = stage_of(data)
        counting = stage in (DocumentStage.reading, DocumentStage.embedding)
        total = data.progress_total
        progress = (
            Progress(done=data.progress_done or 0, total=total) if counting and total else None
        )
        fields = {name: getattr(data, name) for name in cls.model_fields if hasattr(data, name)}
        return {**fields, "stage": stage, "progress": progress}


class TextSourceIn(BaseModel):
    title: Title
    text: str = Field(min_length=1, max_length=1_000_000, description="The text, as pasted.")


class UrlSourceIn(BaseModel):
    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="An http(s) address; fetched by the worker, private addresses refused.",
    )
    title: Title | None = Field(None, description="Defaults to the address.")


class PageStartOut(BaseModel):
    page: int
    start: int = Field(description="Offset in the extracted text where the page begins.")


class DocumentTextOut(BaseModel):
    """A window of a document's extracted text: what citations' offsets index into."""

    document_id: str
    length: int = Field(description="Characters in the whole extracted text.")
    offset: int = Field(description="Where `text` begins in the whole text.")
    text: str = Field(description="Blocks (paragraphs, headings, items) separated by a blank line.")
    clipped_start: bool = Field(
        description="A passage: its paragraph begins before `offset` (it was clipped)."
    )
    clipped_end: bool = Field(description="More of the text (or of the paragraph) follows.")
    next_offset: int | None = Field(
        description="The `offset` of the next window; null at the end or for a passage."
    )
    pages: list[PageStartOut] = Field(
        description="Where each page begins, for paged documents (PDF, slides, sheets)."
    )
