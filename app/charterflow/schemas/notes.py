"""Request and response bodies of notes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from charterflow.schemas.common import ORMModel, Title, storable
from charterflow.schemas.search import CitationOut

_Id = Annotated[str, StringConstraints(max_length=32), AfterValidator(storable)]
_Text = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(storable)]
_Offset = Annotated[int, Field(ge=0, le=2**31 - 1)]


class CitationIn(BaseModel):
    """A citation given by a client (usually copied from an answer), bounded like ours."""

    document_id: _Id
    document_title: Annotated[str, StringConstraints(max_length=300), AfterValidator(storable)]
    chunk_id: _Id
    text: _Text
    start: _Offset
    end: _Offset
    page: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    score: float = Field(0.0, ge=-1.0, le=1e6)
    heading: Annotated[str, StringConstraints(max_length=1000), AfterValidator(storable)] | None = (
        None
    )


class NoteIn(BaseModel):
    """Either ``title`` and ``body`` (with optional ``citations``), or ``from_message_id``:
    a conversation turn of the same notebook saved with its answer and citations."""

    title: Title | None = Field(None, description="Defaults to the saved turn's question.")
    body: str | None = Field(None, max_length=200_000)
    citations: list[CitationIn] = Field(default_factory=list, max_length=100)
    from_message_id: str | None = Field(None, max_length=32)

    @model_validator(mode="after")
    def _one_source(self) -> NoteIn:
        if self.from_message_id is None and (self.title is None or self.body is None):
            raise ValueError("give title and body, or from_message_id")
        if self.body is not None:
            storable(self.body)
        return self


class NoteUpdate(BaseModel):
    title: Title | None = None
    body: str | None = Field(None, max_length=200_000)
    citations: list[CitationIn] | None = Field(
        None, max_length=100, description="Replaces the citations (give [] to drop them)."
    )

    @model_validator(mode="after")
    def _storable(self) -> NoteUpdate:
        if self.body is not None:
            storable(self.body)
        return self


class NoteOut(ORMModel):
    id: str
    workspace_id: str
    notebook_id: str
    title: str
    body: str
    citations: list[CitationOut]
    from_message_id: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
