"""Request and response bodies of notebook search and ask."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from charterflow.schemas.common import storable


class SearchHitOut(BaseModel):
    chunk_id: str
    document_id: str
    document_title: str
    text: str
    start: int = Field(description="Offset of the passage in the document's extracted text.")
    end: int
    page: int | None = Field(description="PDF page of the passage; null for other types.")
    score: float = Field(description="Reciprocal-rank-fusion score of the hybrid ranking.")
    similarity: float = Field(description="Cosine similarity of passage and query.")
    lexical_rank: int | None
    vector_rank: int | None


class SearchOut(BaseModel):
    query: str
    items: list[SearchHitOut]


class AskIn(BaseModel):
    question: Annotated[str, AfterValidator(storable)] = Field(min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=20, description="Passages to answer from, at most.")


class CitationOut(BaseModel):
    document_id: str
    document_title: str
    chunk_id: str
    text: str
    start: int
    end: int
    page: int | None
    score: float


class AskOut(BaseModel):
    answer: str
    mode: Literal["extractive", "llm"]
    citations: list[CitationOut]
    warning: str | None = None
